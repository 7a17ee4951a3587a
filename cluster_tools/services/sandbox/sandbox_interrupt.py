"""``clustertools sandbox interrupt NODE``: a spot reclaim, on demand.

On ParallelCluster a reclaimed spot instance is gone at once: its slurmd and every task on it die
unannounced, clustermgtd sets the node DOWN, Slurm ends its jobs as NODE_FAIL and requeues them (unless
--no-requeue). A static node is then replaced by a new instance of the same name; a dynamic one is
powered down (ParallelCluster's clustermgtd, _handle_unhealthy_dynamic_nodes: POWER_DOWN_FORCE) and boots
again when work asks for it. Here the same happens to a sandbox node: every process in its cgroups (its
slurmd and its tasks) is killed with SIGKILL by the SuspendProgram, the node is set DOWN with a reason
saying so, then replaced or powered down. Requeued jobs start after the requeue delay (cred_expire).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import SandboxError
from cluster_tools.model.names import NODE_NAME
from cluster_tools.model.progress import Progress
from cluster_tools.services.sandbox import sandbox_files as files
from cluster_tools.services.sandbox import sandbox_nodes as nodes
from cluster_tools.store.state_dir import StateDir

REASON = "spot interruption (clustertools sandbox interrupt)"


@dataclass(frozen=True)
class Interruption:
    node: str
    jobs: tuple[str, ...]  # the job ids that ran on the node (each requeued by Slurm unless --no-requeue)
    killed: int  # processes killed with the node

    def to_json(self) -> dict[str, object]:
        return {"node": self.node, "jobs": list(self.jobs), "killed": self.killed, "reason": REASON}


def sandbox_interrupt(state: StateDir, node: str, *, environ: Mapping[str, str], progress: Progress) -> Interruption:
    """Take ``node`` away as a spot reclaim does, then replace it (static) or power it down (dynamic)."""
    from cluster_tools.services.sandbox.sandbox_lifecycle import sandbox_status

    NODE_NAME.check(node)
    status = sandbox_status(state, with_nodes=True)
    if not status.running:
        raise SandboxError("the sandbox is not running", "start it: clustertools sandbox up")
    names = [n.name for n in status.nodes]
    if node not in names:
        raise SandboxError(
            f"the sandbox has no node {node!r} (nodes: {', '.join(names) or 'none'})",
            "`clustertools sandbox status` lists them",
        )
    paths = files.sandbox_paths(state.sandbox)
    saved = json.loads(paths.state_file.read_text())
    dynamic = next((n["dynamic"] for n in saved["nodes"] if n["name"] == node), True)
    env = nodes.admin_env(paths)
    jobs = tuple(job for job, _ in _jobs_on(node, env))
    progress(f"interrupting {node}: its slurmd and {len(jobs)} job(s) on it are killed, as a reclaimed instance's")
    victims = _processes_of(saved["cgroups"]["pids"], node)
    nodes.stop_all(paths, [node])
    nodes.run_admin(["scontrol", "update", f"nodename={node}", "state=DOWN", f"reason={REASON}"], env)
    progress(f"{node} is DOWN: Slurm ends its jobs as NODE_FAIL and requeues them")
    _wait(lambda: not [job for job, state in _jobs_on(node, env) if state in ("RUNNING", "COMPLETING")])
    if dynamic:
        nodes.run_admin(["scontrol", "update", f"nodename={node}", "state=POWER_DOWN_FORCE", f"reason={REASON}"], env)
        progress(f"{node} powers down; it boots again when work asks for it")
    else:
        progress(f"a new instance takes {node}'s place")
        holder = next(c.pid for c in status.components if c.name == "head")
        assert holder is not None  # status.running: every component runs, so each has a pid
        nodes.boot_again(paths, holder, [node])
        nodes.run_admin(["scontrol", "update", f"nodename={node}", "state=RESUME"], env)
        nodes.wait_responding(env, [node], 60)
    return Interruption(node=node, jobs=jobs, killed=len(victims))


def _processes_of(pids_parent: str, node: str) -> list[str]:
    found = []
    for procs_file in Path(pids_parent, node).rglob("cgroup.procs"):
        try:
            found += procs_file.read_text().split()
        except OSError:
            continue
    return sorted(set(found))


def _jobs_on(node: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(job id, state) of every task on ``node``."""
    lines = nodes.run_admin(["squeue", "-h", "-r", "-o", "%i|%N|%T"], env).splitlines()
    return [
        (job, state)
        for job, nodes, state in (line.split("|", 2) for line in lines if line.count("|") == 2)
        if nodes == node
    ]


def _wait(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)
