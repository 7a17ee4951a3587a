"""Waiting for a ParallelCluster stack with its CloudFormation events as progress (``up`` and ``down``).

A create takes 10-20 minutes; the status alone ("CREATE_IN_PROGRESS") says nothing for all that time.
The stack's events say what is being built and, on failure, why: the FIRST failed resource is the cause
(everything after it is cancelled or rolled back because of it), so that is what the error names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.progress import Progress
from cluster_tools.transport import pcluster as pc

OnStatus = Callable[[pc.ClusterDescription], None]
OnEvent = Callable[[pc.StackEvent], None]
# CloudFormation's reason for resources stopped because another one failed: never the cause.
_CASCADE = ("Resource creation cancelled", "Resource update cancelled", "The following resource(s) failed")


@dataclass
class StackEventFeed:
    """The stack's events not seen before, oldest first, one call per poll in the common case (a page holds
    the latest events; older pages are read only until an event already seen). ``since`` drops events
    older than the operation (a delete must not replay the create's history)."""

    name: str
    region: str | None
    since: datetime | None = None
    max_pages: int = 5
    seen: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    first_failure: pc.StackEvent | None = None
    unavailable: str | None = None  # why events cannot be read (e.g. no permission); then only status shows

    def poll(self) -> list[pc.StackEvent]:
        if self.unavailable:
            return []
        fresh: list[pc.StackEvent] = []
        token = None
        try:
            for _ in range(self.max_pages):
                page, token = pc.get_cluster_stack_events(self.name, region=self.region, next_token=token)
                new = [e for e in page if e.event_id not in self.seen and not self._too_old(e)]
                fresh += new
                if len(new) < len(page) or not token:
                    break
        except pc.PclusterNotFound:
            return []  # not there yet (create) or gone (delete): the status poll says which
        except pc.PclusterError as exc:
            self.unavailable = exc.message
            return []
        fresh.reverse()
        for event in fresh:
            self._note(event)
        return fresh

    def _too_old(self, event: pc.StackEvent) -> bool:
        return self.since is not None and event.timestamp is not None and event.timestamp < self.since

    def _note(self, event: pc.StackEvent) -> None:
        self.seen.add(event.event_id)
        if event.status.endswith("IN_PROGRESS"):
            self.started.add(event.logical_id)
        elif event.status.endswith("COMPLETE"):
            self.finished.add(event.logical_id)
        if (
            event.status.endswith("FAILED")
            and self.first_failure is None
            and event.logical_id != self.name
            and not event.reason.startswith(_CASCADE)
        ):
            self.first_failure = event


def describe_event(event: pc.StackEvent) -> str:
    """One line per event: ``12:02:11 HeadNode (AWS::EC2::Instance) CREATE_IN_PROGRESS: reason``."""
    when = event.timestamp.strftime("%H:%M:%S") if event.timestamp else "--:--:--"
    kind = f" ({event.resource_type})" if event.resource_type else ""
    return f"{when} {event.logical_id}{kind} {event.status}" + (f": {event.reason}" if event.reason else "")


def wait_for_create(
    name: str,
    region: str,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    on_status: OnStatus | None = None,
    on_event: OnEvent | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> pc.ClusterDescription:
    """Poll until the cluster leaves CREATE_IN_PROGRESS, passing each new stack event to ``on_event``.
    CREATE_COMPLETE is returned; anything else raised, naming the first failed resource and its reason."""
    return _wait_for(
        name,
        region,
        "CREATE",
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        on_event=on_event,
        sleep=sleep,
    )


def wait_for_update(
    name: str,
    region: str,
    *,
    since: datetime,
    poll_seconds: float,
    timeout_seconds: float,
    on_status: OnStatus | None = None,
    on_event: OnEvent | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> pc.ClusterDescription:
    """Poll until the cluster leaves UPDATE_IN_PROGRESS (events before ``since`` skipped: the create's). UPDATE_COMPLETE
    is returned; a failed update (ParallelCluster rolls the stack back: UPDATE_FAILED) raised with its first failure."""
    return _wait_for(
        name,
        region,
        "UPDATE",
        poll_seconds=poll_seconds,
        timeout_seconds=timeout_seconds,
        on_status=on_status,
        on_event=on_event,
        sleep=sleep,
        since=since,
    )


def _wait_for(
    name: str,
    region: str,
    operation: str,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    on_status: OnStatus | None,
    on_event: OnEvent | None,
    sleep: Callable[[float], None],
    since: datetime | None = None,
) -> pc.ClusterDescription:
    feed = StackEventFeed(name, region, since=since)
    waited = 0.0
    while True:
        for event in feed.poll():
            if on_event:
                on_event(event)
        described = pc.describe_cluster(name, region=region)
        if on_status:
            on_status(described)
        if described.status != f"{operation}_IN_PROGRESS":
            break
        if waited >= timeout_seconds:
            raise ClusterToolsError(
                f"cluster {name} is still {operation}_IN_PROGRESS after {int(waited // 60)} minutes",
                f"it goes on in AWS: `clustertools describe -c {name}`"
                + (", then `clustertools up` again to record it" if operation == "CREATE" else ""),
            )
        sleep(poll_seconds)
        waited += poll_seconds
    if described.status != f"{operation}_COMPLETE":
        raise _failure(name, operation, described, feed, on_event)
    return described


def _failure(
    name: str, operation: str, described: pc.ClusterDescription, feed: StackEventFeed, on_event: OnEvent | None
) -> ClusterToolsError:
    """The error of a create or update that ended other than COMPLETE: its reason, and where to look next."""
    for event in feed.poll():  # the failure's own events may land after the last poll
        if on_event:
            on_event(event)
    hint = (
        (
            f"`clustertools triage -c {name}` shows why (the head node's logs); then delete it with "
            f"`clustertools down -c {name}`"
        )
        if operation == "CREATE"
        else (
            f"ParallelCluster rolled the stack back to the config before; `clustertools triage -c {name}` "
            "shows the head node's logs"
        )
    )
    return ClusterToolsError(
        f"cluster {name} failed: {described.status}: {failure_reason(described, feed)}"
        if operation == "CREATE"
        else f"updating {name} failed: {described.status}: {failure_reason(described, feed)}",
        hint,
    )


def wait_for_delete(
    name: str,
    region: str | None,
    *,
    since: datetime | None,
    poll_seconds: float,
    timeout_seconds: float,
    on_progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll until the cluster is gone, reporting its status and each new stack event; a failed delete is
    raised with the first failed resource (typically storage that is still in use)."""
    feed = StackEventFeed(name, region, since=since)
    waited = 0.0
    while True:
        for event in feed.poll():
            on_progress(describe_event(event))
        try:
            described = pc.describe_cluster(name, region=region)
        except pc.PclusterNotFound:
            return
        on_progress(f"deleting {name}: {described.status} ({int(waited // 60)} min)")
        if described.status.endswith("FAILED"):
            raise ClusterToolsError(
                f"deleting {name} failed: {failure_reason(described, feed)}",
                f"fix what it names, then `clustertools down -c {name}` again",
            )
        if waited >= timeout_seconds:
            raise ClusterToolsError(
                f"{name} was not deleted within {timeout_seconds / 60:.0f} minutes",
                "`clustertools describe` shows where it stands",
            )
        sleep(poll_seconds)
        waited += poll_seconds


def failure_reason(described: pc.ClusterDescription, feed: StackEventFeed) -> str:
    parts = []
    if feed.first_failure is not None:
        event = feed.first_failure
        parts.append(f"{event.logical_id} ({event.resource_type}) {event.status}: {event.reason or 'no reason given'}")
    if described.failure_reason:
        parts.append(described.failure_reason)
    return "; ".join(parts) or f"stack {described.stack_status}"
