"""ParallelCluster's failures as ours: every exception ``pcluster.lib`` raises becomes a ``PclusterError`` (a
TransportError) with one line and a hint, and the records its error answers carry (validation messages, an
update's change set) are kept on it. No pcluster traceback reaches the user."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cluster_tools.errors import TransportError


class PclusterError(TransportError):
    """ParallelCluster refused or failed a call; ``status`` is its HTTP-like code (400, 404, ...)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        command: str | None = None,
        status: int | None = None,
        validation_messages: Sequence[ValidationMessage] = (),
        change_set: Sequence[ChangeRequest] = (),
    ) -> None:
        super().__init__(message, hint, command=command)
        self.status = status
        self.validation_messages = tuple(validation_messages)
        self.change_set = tuple(change_set)  # an update's changes, each refused one with its message


class PclusterNotFound(PclusterError):
    """No such cluster in that region (``down`` of a deleted cluster can treat it as done)."""


class PclusterClusterExists(PclusterError):
    """Create of a name that already has a stack (``up`` can report the existing cluster instead)."""


class PclusterConfigRejected(PclusterError):
    """ParallelCluster's validators refused the config; ``validation_messages`` holds each finding."""


@dataclass(frozen=True)
class ValidationMessage:
    level: str  # INFO, WARNING or ERROR
    type: str  # the validator, e.g. KeyPairValidator
    message: str


@dataclass(frozen=True)
class ChangeRequest:
    """One change of an update as ParallelCluster's API answers it (``changeSet``, ``updateValidationErrors``)."""

    parameter: str
    current: str
    requested: str
    refused: str | None = None  # ParallelCluster's reason and the action it needs, when it refused this one


def api_error(exc: Any, what: str) -> PclusterError:
    from pcluster.api import encoder

    code = getattr(exc, "code", None)
    content = json.loads(encoder.JSONEncoder().encode(exc.content)) if exc.content is not None else {}
    message = one_line(content.get("message") or type(exc).__name__)
    messages = validation_messages(content.get("configurationValidationErrors") or content.get("validationMessages"))
    changes = change_requests(content.get("changeSet"), content.get("updateValidationErrors"))
    if code == 412:  # a dry run that passed; create_cluster and update_cluster turn it into a result
        return PclusterError(f"{what}: {message}", status=code, validation_messages=messages, change_set=changes)
    if any(change.refused for change in changes):
        refused = "; ".join(f"{c.parameter}: {c.refused}" for c in changes if c.refused)
        return PclusterError(
            f"{what}: {message.rstrip('.')}: {refused}",
            "see `clustertools update --dry-run` for what each change needs",
            status=code,
            change_set=changes,
        )
    if code == 404:
        return PclusterNotFound(f"{what}: {message}", "check the name and the region (clustertools list)", status=code)
    if code == 400 and re.search(r"Cluster \S+ already exists", message):
        return PclusterClusterExists(f"{what}: {message}", "describe it, or delete it first", status=code)
    if messages or type(exc).__name__ == "CreateClusterBadRequestException":
        errors = [m for m in messages if m.level == "ERROR"] or list(messages)
        detail = "; ".join(f"{m.type}: {one_line(m.message)}" for m in errors)
        return PclusterConfigRejected(
            f"{what}: {message.rstrip('.')}" + (f": {detail}" if detail else ""),
            "fix the config (clustertools validate), or see ParallelCluster's validators",
            status=code,
            validation_messages=messages,
        )
    if code == 429:
        return PclusterError(f"{what}: {message}", "AWS throttled the request: wait a minute and retry", status=code)
    if code == 409:
        return PclusterError(f"{what}: {message}", "wait for the cluster's current operation to finish", status=code)
    return PclusterError(f"{what}: {message}", _hint_for(message), status=code)


def cli_error(exc: Any, what: str) -> PclusterError:
    data = exc.data if isinstance(getattr(exc, "data", None), dict) else {}
    message = one_line(str(data.get("message") or exc))
    return PclusterError(f"{what}: {message}", _hint_for(message), status=400 if "Bad Request" in message else None)


def other_error(exc: Exception, what: str) -> PclusterError:
    from cluster_tools.transport.aws_session import CREDENTIALS_HINT, NETWORK_HINT, aws_failure_of

    failure = aws_failure_of(exc)
    if failure is not None and failure.kind == "credentials":
        return PclusterError(f"{what}: {exc}", CREDENTIALS_HINT)
    if failure is not None and failure.kind == "unreachable":
        return PclusterError(f"{what}: cannot reach AWS ({exc})", NETWORK_HINT)
    return PclusterError(
        f"{what}: unexpected {type(exc).__name__} from ParallelCluster: {one_line(str(exc))}",
        "rerun with --debug for the traceback",
    )


def _hint_for(message: str) -> str | None:
    # pcluster folds botocore errors into InternalServiceException text: recognise the usual ones.
    lowered = message.lower()
    if "credentials" in lowered or "security token" in lowered or "expiredtoken" in lowered:
        return "configure AWS credentials: `aws configure`, or set AWS_PROFILE"
    if "could not connect" in lowered or "endpoint" in lowered:
        return "check your network (and AWS_ENDPOINT_URL if set)"
    if "node.js" in lowered or ("node" in lowered and "executable" in lowered):
        return "ParallelCluster needs Node.js to create clusters: install nodejs"
    if "region" in lowered:
        return "pass --region, or set AWS_DEFAULT_REGION or the profile's region"
    if "accessdenied" in lowered or "not authorized" in lowered or "unauthorized" in lowered:
        return "your AWS identity lacks a permission ParallelCluster needs (see its IAM policies)"
    return None


def change_requests(change_set: Any, refusals: Any) -> tuple[ChangeRequest, ...]:
    refused = {
        item.get("parameter"): one_line(str(item.get("message", "")))
        for item in refusals or ()
        if isinstance(item, dict)
    }
    return tuple(
        ChangeRequest(
            parameter=str(item.get("parameter", "")),
            current=str(item.get("currentValue", "-")),
            requested=str(item.get("requestedValue", "-")),
            refused=refused.get(item.get("parameter")),
        )
        for item in change_set or ()
        if isinstance(item, dict)
    )


def validation_messages(items: Any) -> tuple[ValidationMessage, ...]:
    return tuple(
        ValidationMessage(
            level=str(m.get("level", "")), type=str(m.get("type", "")), message=one_line(str(m.get("message", "")))
        )
        for m in items or ()
        if isinstance(m, dict)
    )


def one_line(text: str) -> str:
    return " ".join(str(text).split())
