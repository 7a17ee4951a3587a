"""`clustertools down`: tear a cluster down without losing data.

It refuses while any run on the cluster has subjects pending or running (their outputs are not in S3
yet), naming them; `force` overrides. The sandbox stops its daemons (its files stay); a ParallelCluster
cluster is deleted through pcluster.lib, with its retained storage listed; a cluster reached over SSH
that clustertools did not create is never deleted (forget it instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.store.cluster_store import forget_cluster
from cluster_tools.store.run_store import list_runs
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

if TYPE_CHECKING:
    from cluster_tools.model.cost.pricing import StorageKind

_SHOWN = 10


@dataclass(frozen=True)
class Unfinished:
    run_id: str
    subjects: tuple[str, ...]
    kept: tuple[str, ...] = ()  # computed, upload failed: outputs only on the head node (`results push`)


@dataclass
class DownReport:
    cluster: str
    provider: str
    stopped: list[str] = field(default_factory=list)
    unfinished_overridden: list[Unfinished] = field(default_factory=list)
    retained: list[str] = field(default_factory=list)


def unfinished_subjects(state: StateDir, record: ClusterRecord, connect: ShellFactory) -> list[Unfinished]:
    """Subjects still pending or running in the cluster's runs: one SSH connection for all runs."""
    from cluster_tools.services.runs.run_follow import RunFilesMissing, read_status

    runs = [r for r in list_runs(state) if r.cluster == record.name and r.attempts]
    if not runs:
        return []
    found = []
    with connect(record) as conn:
        for run in runs:
            try:
                status = read_status(conn, run)
            except RunFilesMissing:
                continue  # the head node holds nothing of it: nothing of it can still run there
            busy = tuple(s.subject for s in status.subjects if s.state in ("PENDING", "RUNNING"))
            kept = tuple(s.subject for s in status.subjects if s.state == "FAILED" and s.kept)
            if busy or kept:
                found.append(Unfinished(run.run_id, busy, kept))
    return found


def describe_unfinished(unfinished: list[Unfinished]) -> str:
    parts = []
    for item in unfinished:
        if item.subjects:
            parts.append(f"run {item.run_id}: {len(item.subjects)} pending or running ({_names(item.subjects)})")
        if item.kept:
            parts.append(
                f"run {item.run_id}: {len(item.kept)} with outputs kept on the head node after a failed "
                f"upload ({_names(item.kept)}; `clustertools results push {item.run_id}` uploads them)"
            )
    return "; ".join(parts)


def _names(subjects: tuple[str, ...]) -> str:
    return ", ".join(subjects[:_SHOWN]) + (f" and {len(subjects) - _SHOWN} more" if len(subjects) > _SHOWN else "")


def take_down(
    state: StateDir, record: ClusterRecord, connect: ShellFactory, *, force: bool, progress: Progress, project_spec=None
) -> DownReport:
    if record.provider == "ssh" and not record.sandbox:
        raise ClusterToolsError(
            f"clustertools did not create {record.name} ({record.address}): it never deletes it",
            f"`clustertools forget {record.name}` forgets it here",
        )
    report = DownReport(cluster=record.name, provider="sandbox" if record.sandbox else record.provider)
    try:
        unfinished = unfinished_subjects(state, record, connect)
    except ClusterToolsError as exc:
        if not force:
            raise ClusterToolsError(
                f"cannot check {record.name} for unfinished runs: {exc.message}", "pass --force to take it down anyway"
            ) from None
        unfinished = []
    if unfinished and not force:
        raise ClusterToolsError(
            f"{record.name} still has work whose outputs are not in S3 yet: {describe_unfinished(unfinished)}",
            "wait for it (`clustertools status RUN --watch`), cancel it, or pass --force",
        )
    report.unfinished_overridden = unfinished
    if record.sandbox:
        from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_down

        report.stopped = sandbox_down(state, progress=progress)
        return report
    report.retained = _retained_storage(project_spec)
    _delete_parallelcluster(record, progress)
    forget_cluster(state, record.name)
    return report


def _delete_parallelcluster(
    record: ClusterRecord,
    progress: Progress,
    *,
    poll: float = 15.0,
    timeout: float = 3600.0,
    sleep: Callable[[float], None] | None = None,
) -> None:
    from datetime import datetime, timedelta

    from cluster_tools.services.aws.stack_progress import wait_for_delete
    from cluster_tools.transport import pcluster

    # a little slack for clock skew between this machine and CloudFormation's timestamps
    since = datetime.now(UTC) - timedelta(minutes=2)
    try:
        pcluster.delete_cluster(record.name, region=record.region)
    except pcluster.PclusterNotFound:
        progress(f"{record.name} is already gone")
        return
    wait_for_delete(
        record.name,
        record.region,
        since=since,
        poll_seconds=poll,
        timeout_seconds=timeout,
        on_progress=progress,
        sleep=sleep or time.sleep,
    )


# What the templates in cluster-config/ create (sizes are their defaults when the project gives none).
STORAGE_PRICE_KIND: dict[str, tuple[StorageKind, int | None]] = {
    "ebs": ("ebs_gp3", 100),
    "efs": ("efs_standard", None),
    "fsx-lustre": ("fsx_lustre_scratch_2", 1200),
}


def _retained_storage(spec) -> list[str]:
    """What `Retain` keeps after the stack is gone, and what it costs a month: it bills until deleted by
    hand (a volume mounted by id was never ours to delete)."""
    from cluster_tools.model.cost.pricing import PriceNotFound, format_usd, load_price_table, storage_monthly_price

    storage = spec.shared_storage if spec is not None else None
    if storage is None or storage.existing_id:
        return []
    kind, default_size = STORAGE_PRICE_KIND[storage.type]
    size = storage.size_gb or default_size
    what = f"{storage.type} file system '{storage.name}' ({storage.mount_dir}" + (f", {size} GB)" if size else ")")
    table = load_price_table()
    try:
        if size is None:  # EFS bills what is stored, which only AWS knows
            per_gb = storage_monthly_price(table, spec.region, kind, 1)
            cost = f"{format_usd(per_gb.gb_month_usd)} per GB stored a month ({per_gb.source})"
        else:
            cost = storage_monthly_price(table, spec.region, kind, size).describe()
    except PriceNotFound:
        cost = "billed by AWS (no price for it in clustertools' table)"
    return [f"{what}: kept, and billed until you delete it: {cost}"]
