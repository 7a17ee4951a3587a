"""`clustertools start`: bring a stopped cluster back (issue 17, item 1).

Built so far: the sandbox after its own autostop, which set its partitions INACTIVE (what ParallelCluster's
clustermgtd does to a stopped compute fleet): autostop is armed again with the limit it had, which sets those
partitions UP and restarts its idle clock (bootstrap/autostop-configure.sh). Not built yet: a ParallelCluster
cluster (its head node's EC2 instance started, its new address recorded and host key checked, the compute fleet
started): that is said in one line, with the two commands that do it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from cluster_tools.clusters import ClusterRecord
from cluster_tools.config import Project
from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.slurm.partition_fit import SINFO_FIT_FORMAT, parse_partitions
from cluster_tools.state import StateDir


@dataclass(frozen=True)
class StartResult:
    cluster: str
    started: tuple[str, ...]  # partitions set UP; () when nothing was stopped
    autostop_minutes: int | None  # the autostop armed again, with the limit it had

    def to_json(self) -> dict:
        return {"cluster": self.cluster, "started": list(self.started), "autostop_minutes": self.autostop_minutes}


def start_cluster(state: StateDir, record: ClusterRecord, project: Project | None, connect, *,
                  environ: Mapping[str, str], progress: Callable[[str], None] = lambda _: None) -> StartResult:
    if record.sandbox:
        return _start_sandbox(state, record, project, connect, environ, progress)
    if record.provider != "parallelcluster":
        raise ConfigError(f"{record.name} is a cluster reached over SSH that clustertools did not create: it never "
                          "stops it, so it does not start it")
    raise ClusterToolsError(
        f"starting a stopped ParallelCluster cluster ({record.name}) is not built yet",
        f"start its head node's EC2 instance, then `pcluster update-compute-fleet -n {record.name} --status "
        "START_REQUESTED`; `clustertools describe` shows its state")


def _inactive(state: StateDir, record: ClusterRecord, conn) -> tuple[frozenset[str], dict]:
    """The INACTIVE partitions, and the head node's autostop status ({} where it was never armed)."""
    from cluster_tools.services.autostop import read_autostop, status_path

    listing = conn.run(["sinfo", "-h", "-e", "-o", SINFO_FIT_FORMAT], timeout=30).check()
    status, _ = read_autostop(conn, status_path(state, record))
    return parse_partitions(listing.text).inactive, status or {}


def _start_sandbox(state: StateDir, record: ClusterRecord, project: Project | None, connect,
                   environ: Mapping[str, str], progress: Callable[[str], None]) -> StartResult:
    from cluster_tools.services.autostop import SANDBOX_INTERVAL, set_autostop

    with connect(record) as conn:
        inactive, autostop = _inactive(state, record, conn)
    minutes = autostop.get("minutes")
    if not inactive:
        return StartResult(record.name, (), minutes)
    progress(f"setting {', '.join(sorted(inactive))} UP: autostop armed again"
             + (f" ({minutes} min idle)" if minutes else " (off)"))
    set_autostop(state, record, project, minutes, interval=autostop.get("interval_seconds") or SANDBOX_INTERVAL,
                 environ=environ)
    with connect(record) as conn:
        still, _ = _inactive(state, record, conn)
    if still:
        raise ClusterToolsError(f"partitions {', '.join(sorted(still))} of {record.name} are still INACTIVE: "
                                "autostop did not set them so", "`clustertools ssh -- sinfo` shows them; "
                                "`clustertools sandbox down` and `sandbox up` start the sandbox UP")
    return StartResult(record.name, tuple(sorted(inactive)), minutes)
