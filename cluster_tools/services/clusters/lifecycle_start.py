"""`clustertools start`: bring a stopped cluster back (issue 17, item 1).

The sandbox after its own autostop, which set its partitions INACTIVE (what ParallelCluster's clustermgtd does
to a stopped compute fleet): autostop is armed again with the limit it had, which sets those partitions UP and
restarts its idle clock (bootstrap/autostop-configure.sh).

A ParallelCluster cluster after autostop's `stop` (fleet stopped, then the head node): its head node's instance
is found in EC2 as ParallelCluster finds it, started and waited for; its new address is recorded with the key
pinned at `up` carried over to it (a stopped and started instance keeps its host keys), and one connection checks
it, never learning another; then the compute fleet is started (ParallelCluster's update-compute-fleet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.model.project.project_config import Project
from cluster_tools.slurm.partition_fit import SINFO_FIT_FORMAT, parse_partitions
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import RemoteShell, ShellFactory


@dataclass(frozen=True)
class StartResult:
    cluster: str
    started: tuple[str, ...]  # what was started: partitions set UP, the head node, the compute fleet; () if none
    autostop_minutes: int | None = None  # the sandbox: the autostop armed again, with the limit it had
    host: str | None = None  # a ParallelCluster head node's address, as recorded now

    def to_json(self) -> dict:
        return {
            "cluster": self.cluster,
            "started": list(self.started),
            "autostop_minutes": self.autostop_minutes,
            "host": self.host,
        }


@dataclass(frozen=True)
class Aws:
    """The edges a ParallelCluster start goes through, built by the caller: an EC2 client in the cluster's region
    and ParallelCluster's update-compute-fleet (transport/pcluster.py)."""

    ec2: Any
    update_compute_fleet: Callable[..., Any]
    wait_seconds: int = 900  # for the instance to run, then for its sshd
    poll_seconds: float = 15


def start_cluster(
    state: StateDir,
    record: ClusterRecord,
    project: Project | None,
    connect: ShellFactory,
    *,
    environ: Mapping[str, str],
    progress: Progress = lambda _: None,
    aws: Callable[[ClusterRecord], Aws] | None = None,
) -> StartResult:
    """``aws``: the ParallelCluster edges for ``record`` (default: boto3 and pcluster from the environment)."""
    if record.sandbox:
        return _start_sandbox(state, record, project, connect, environ, progress)
    if record.provider != "parallelcluster":
        raise ConfigError(
            f"{record.name} is a cluster reached over SSH that clustertools did not create: it never "
            "stops it, so it does not start it"
        )
    from cluster_tools.services.aws.lifecycle_start_aws import default_aws, start_parallelcluster

    return start_parallelcluster(state, record, connect, (aws or default_aws)(record), progress)


def _inactive(state: StateDir, record: ClusterRecord, conn: RemoteShell) -> tuple[frozenset[str], dict]:
    """The INACTIVE partitions, and the head node's autostop status ({} where it was never armed)."""
    from cluster_tools.services.remote.autostop_control import read_autostop, status_path

    listing = conn.run(["sinfo", "-h", "-e", "-o", SINFO_FIT_FORMAT], timeout=30).check()
    status, _ = read_autostop(conn, status_path(state, record))
    return parse_partitions(listing.text).inactive, status or {}


def _start_sandbox(
    state: StateDir,
    record: ClusterRecord,
    project: Project | None,
    connect: ShellFactory,
    environ: Mapping[str, str],
    progress: Progress,
) -> StartResult:
    from cluster_tools.services.remote.autostop_control import SANDBOX_INTERVAL, set_autostop

    with connect(record) as conn:
        inactive, autostop = _inactive(state, record, conn)
    minutes = autostop.get("minutes")
    if not inactive:
        return StartResult(record.name, (), minutes)
    progress(
        f"setting {', '.join(sorted(inactive))} UP: autostop armed again"
        + (f" ({minutes} min idle)" if minutes else " (off)")
    )
    set_autostop(
        state, record, project, minutes, interval=autostop.get("interval_seconds") or SANDBOX_INTERVAL, environ=environ
    )
    with connect(record) as conn:
        still, _ = _inactive(state, record, conn)
    if still:
        raise ClusterToolsError(
            f"partitions {', '.join(sorted(still))} of {record.name} are still INACTIVE: autostop did not set them so",
            "`clustertools ssh -- sinfo` shows them; `clustertools sandbox down` and `sandbox up` start the sandbox UP",
        )
    return StartResult(record.name, tuple(sorted(inactive)), minutes)
