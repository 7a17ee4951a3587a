"""A run's results in S3: list, download, sizes, which subjects have output (one table from a file each:
services/runs/results_collect.py).

Plain functions over explicit arguments (an S3 client, the bucket, the run's key prefix, subjects) that
return dataclasses; printing is the CLI's. Outputs of subject S are the keys under ``<run prefix>/S/``;
``<run prefix>/.clustertools/`` is clustertools' own, never a result: listing starts after
``<run prefix>//``, skipping it unread (subjects start with a letter or digit: after '.' and '/').
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.names import through_link
from cluster_tools.model.runs.run_record import META_PREFIX, RunRecord
from cluster_tools.model.runs.subjects import ID_RE

PER_SUBJECT_LISTING_MAX = 32  # more subjects than this: one listing of the whole run, filtered


@dataclass(slots=True)
class ResultObject:
    subject: str
    key: str  # relative to the run prefix: "<subject>/<path>"
    size: int
    last_modified: str  # ISO 8601, as S3 sent it

    @property
    def path(self) -> str:  # the key below the subject's prefix
        return self.key[len(self.subject) + 1 :]

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "key": self.key, "size": self.size, "last_modified": self.last_modified}


@dataclass
class Listing:
    objects: list[ResultObject]
    ignored: int = 0  # keys under the run outside any subject's prefix (not results)


def client_for_run(run: RunRecord, *, max_pool_connections: int = 32) -> Any:
    """The S3 client for a run's outputs (its region, endpoint, sandbox credentials)."""
    from cluster_tools.transport.s3 import S3Target, make_s3_client

    target = S3Target(region=run.region or "us-east-1", endpoint_url=run.s3_endpoint_url, sandbox=run.sandbox_s3)
    return make_s3_client(target, max_pool_connections=max_pool_connections, raw_timestamps=True)


def check_sandbox_outputs(state: Any, run: RunRecord) -> None:
    """A sandbox run's outputs live in the sandbox's S3, which keeps them while it runs (and across a restart
    of its daemons), not across `sandbox down`: say so, instead of an empty listing or a refused connection."""
    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status

    if not run.sandbox_s3 or not sandbox_paths(state.sandbox).state_file.exists():
        return  # not a sandbox's run, or no sandbox known here to say anything of (purged)
    status = sandbox_status(state)
    if not status.running:
        raise ClusterToolsError(
            f"run {run.run_id} wrote its outputs to the sandbox's S3, and the sandbox is not running",
            "clustertools sandbox up (a sandbox that was only stopped by a crash "
            "brings its objects back; one taken down starts empty)",
        )
    if status.started_at and status.started_at > run.created_at:
        raise ClusterToolsError(
            f"run {run.run_id} wrote its outputs to an earlier sandbox's S3 ({run.s3_endpoint_url}, before "
            f"`sandbox down`); the sandbox running now started at {status.started_at} with an empty S3 "
            f"({status.s3_endpoint_url}), so they are gone",
            "submit the run again: clustertools submit ... --new-run",
        )


def client_for_cluster(record: Any) -> Any:
    """The S3 client for the storage a cluster's tasks use (a ClusterRecord): AWS in its region, or the
    sandbox's endpoint and credentials."""
    from cluster_tools.transport.s3 import S3Target, make_s3_client

    return make_s3_client(
        S3Target(region=record.region or "us-east-1", endpoint_url=record.s3_endpoint_url, sandbox=record.sandbox)
    )


def check_subject_names(subjects: Iterable[str]) -> list[str]:
    """The subjects, each checked to be a subject ID (so a prefix built from it stays inside the run)."""
    subjects = list(subjects)
    bad = [s for s in subjects if not ID_RE.fullmatch(s)]
    if bad:
        raise ConfigError(
            f"not a subject name: {', '.join(repr(s) for s in bad[:5])}",
            "subjects are letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    return subjects


RUN_SUMMARY = "dataset_description.json"  # the run's own file at its outputs' root (render/run_scripts.py)


def list_results(client: Any, bucket: str, run_prefix: str, subjects: Sequence[str] | None = None) -> Listing:
    """Every result object of the run (or of ``subjects`` only), in key order, from ListObjectsV2 pages.

    A few subjects are listed each under its own prefix, concurrently; more, by one listing of the run.
    """
    from cluster_tools.transport.s3 import iter_object_pages

    base = f"{run_prefix}/"
    wanted = set(check_subject_names(subjects)) if subjects is not None else None
    if wanted is not None and len(wanted) <= PER_SUBJECT_LISTING_MAX:

        def one(subject: str) -> Listing:
            pages = iter_object_pages(client, bucket, f"{base}{subject}/")
            return _collect(pages, len(base), {subject})

        with ThreadPoolExecutor(max(1, min(len(wanted), 16))) as pool:
            parts = list(pool.map(one, sorted(wanted)))
        objects = sorted((o for part in parts for o in part.objects), key=lambda o: o.key)
        return Listing(objects, sum(p.ignored for p in parts))
    return _collect(iter_object_pages(client, bucket, base, start_after=f"{base}/"), len(base), wanted)


def _collect(pages: Iterable[list[dict]], cut: int, wanted: set[str] | None) -> Listing:
    objects: list[ResultObject] = []
    append = objects.append
    valid: dict[str, bool] = {}
    ignored = 0
    for page in pages:
        for entry in page:
            rel = entry["Key"][cut:]
            subject, sep, _ = rel.partition("/")
            ok = valid.get(subject)
            if ok is None:
                ok = valid[subject] = subject != META_PREFIX and ID_RE.fullmatch(subject) is not None
            if not ok or not sep:
                ignored += subject not in (META_PREFIX, RUN_SUMMARY)
                continue
            if wanted is None or subject in wanted:
                modified = entry.get("LastModified", "")
                append(
                    ResultObject(
                        subject,
                        rel,
                        entry.get("Size", 0),
                        modified if isinstance(modified, str) else modified.isoformat(),
                    )
                )
    return Listing(objects, ignored)


PROVENANCE = "provenance.json"  # what every task writes beside its outputs (the wrapper): not an output itself


def subjects_present(client: Any, bucket: str, run_prefix: str) -> set[str]:
    """The subjects with at least one output object under their prefix, their provenance.json aside (one
    listing of the run: a request per 1000 objects)."""
    return {o.subject for o in list_results(client, bucket, run_prefix).objects if o.key != f"{o.subject}/{PROVENANCE}"}


def subjects_with_output(client: Any, run: RunRecord) -> set[str]:
    """The run's subjects that have at least one output object."""
    return subjects_present(client, run.output_location.bucket, run.run_prefix) & set(run.subjects)


# --- du and check ---------------------------------------------------------------------------------


@dataclass
class SubjectUsage:
    subject: str
    objects: int = 0
    bytes: int = 0


@dataclass
class Usage:
    subjects: list[SubjectUsage]
    objects: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"subjects": [vars(s) for s in self.subjects], "objects": self.objects, "bytes": self.bytes}


def summarize_usage(objects: Iterable[ResultObject]) -> Usage:
    by_subject: dict[str, SubjectUsage] = {}
    for obj in objects:
        usage = by_subject.get(obj.subject) or by_subject.setdefault(obj.subject, SubjectUsage(obj.subject))
        usage.objects += 1
        usage.bytes += obj.size
    rows = sorted(by_subject.values(), key=lambda u: u.subject)
    return Usage(rows, sum(u.objects for u in rows), sum(u.bytes for u in rows))


def results_usage(client: Any, bucket: str, run_prefix: str) -> Usage:
    return summarize_usage(list_results(client, bucket, run_prefix).objects)  # per subject with output


@dataclass
class CheckResult:
    subjects: int
    missing: list[str]  # in the run's subject order

    @property
    def with_output(self) -> int:
        return self.subjects - len(self.missing)


def check_outputs(client: Any, bucket: str, run_prefix: str, subjects: Sequence[str]) -> CheckResult:
    """Which of ``subjects`` have no output object at all."""
    present = subjects_present(client, bucket, run_prefix)
    unique = list(dict.fromkeys(subjects))
    return CheckResult(len(unique), [s for s in unique if s not in present])


# --- get ------------------------------------------------------------------------------------------


class UnsafeKey(ValueError):
    """A key that would land outside the download directory."""


def local_path(dest: Path, obj: ResultObject) -> Path:
    """``dest/<subject>/<path>``; a key with a '..' segment or an absolute path is refused."""
    parts = obj.path.split("/")
    if not ID_RE.fullmatch(obj.subject) or parts[0] == "" or ".." in parts or "\x00" in obj.path:
        raise UnsafeKey(obj.key)
    target = dest.joinpath(obj.subject, *parts)
    root = os.path.normpath(dest)
    if os.path.commonpath([root, os.path.normpath(target)]) != root:
        raise UnsafeKey(obj.key)
    return target


@dataclass
class DownloadPlan:
    todo: list[Any]  # transport.s3.Download
    skipped: int = 0  # already there with the same size
    refused: list[str] = field(default_factory=list)  # keys that would escape the directory
    failed: dict[str, str] = field(default_factory=dict)  # key -> why (e.g. a file where a directory goes)

    @property
    def bytes(self) -> int:
        return sum(d.size for d in self.todo)


def plan_download(objects: Iterable[ResultObject], dest: Path) -> DownloadPlan:
    """What to fetch: every file object not already present with the same size; creates directories."""
    from cluster_tools.transport.s3 import Download

    plan = DownloadPlan([])
    made: set[Path] = set()
    linkless: set[Path] = set()  # directories under dest already seen not to be symlinks
    for obj in objects:
        if obj.key.endswith("/"):
            continue  # a "directory" marker, not a file
        try:
            path = local_path(dest, obj)
        except UnsafeKey:
            plan.refused.append(obj.key)
            continue
        if through_link(dest, path, linkless):
            plan.refused.append(obj.key)  # writing there would follow a link already in the destination
            continue
        if _has_size(path, obj.size):
            plan.skipped += 1
            continue
        try:
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
        except OSError as exc:
            plan.failed[obj.key] = f"cannot create {path.parent}: {exc.strerror or exc}"
            continue
        plan.todo.append(Download(key=obj.key, path=str(path), size=obj.size))
    return plan


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


@dataclass
class DownloadReport:
    dest: Path
    downloaded: int
    bytes: int
    skipped: int
    refused: list[str]
    failed: dict[str, str]  # relative key -> one-line error

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed


def download_results(
    client: Any,
    bucket: str,
    run_prefix: str,
    dest: Path,
    subjects: Sequence[str] | None = None,
    *,
    jobs: int = 32,
    on_plan: Callable[[int, int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_file: Callable[[], None] | None = None,
) -> DownloadReport:
    """Download the run's results into ``dest/<subject>/<path>``, ``jobs`` at a time. ``on_plan(files,
    bytes)`` is called once the work is known, then ``on_bytes(n)`` and ``on_file()`` from worker threads."""
    from cluster_tools.transport.s3 import Download, download_files

    plan = plan_download(list_results(client, bucket, run_prefix, subjects).objects, dest)
    if on_plan:
        on_plan(len(plan.todo), plan.bytes)
    base = f"{run_prefix}/"
    remote = [Download(key=base + d.key, path=d.path, size=d.size) for d in plan.todo]
    failed = download_files(
        client,
        bucket,
        remote,
        max_concurrency=jobs,
        on_bytes=on_bytes,
        on_file=(lambda item, error: on_file()) if on_file else None,
    )
    failed_rel = {**plan.failed, **{key[len(base) :]: why for key, why in failed.items()}}
    done = [d for d in plan.todo if d.key not in failed_rel]
    return DownloadReport(dest, len(done), sum(d.size for d in done), plan.skipped, plan.refused, failed_rel)


# --- collect --------------------------------------------------------------------------------------
