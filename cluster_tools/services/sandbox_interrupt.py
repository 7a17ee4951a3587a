"""``clustertools sandbox interrupt NODE``: a spot reclaim, on demand.

On ParallelCluster a reclaimed spot instance is gone at once: its slurmd and every task on it die
unannounced, clustermgtd sets the node DOWN, Slurm ends its jobs as NODE_FAIL and requeues them (unless
--no-requeue), and a new instance takes the node's place. Here the same happens to a sandbox node: its
slurmd and every job process (slurmstepd's sessions) are killed with SIGKILL, the node is set DOWN with
a reason saying so, then its slurmd is started again (`sandbox up` restarts exactly what died) and the
node is resumed. Requeued jobs start again after the sandbox's requeue delay (cred_expire).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from cluster_tools.errors import SandboxError
from cluster_tools.names import NODE_NAME
from cluster_tools.services import sandbox_files as files
from cluster_tools.state import StateDir
from cluster_tools.transport import local_processes as procs

Progress = Callable[[str], None]
REASON = "spot interruption (clustertools sandbox interrupt)"


@dataclass(frozen=True)
class Interruption:
    node: str
    jobs: tuple[str, ...]  # the job ids that ran on the node (each requeued by Slurm unless --no-requeue)
    killed: int  # processes killed with the node

    def to_json(self) -> dict[str, object]:
        return {"node": self.node, "jobs": list(self.jobs), "killed": self.killed, "reason": REASON}


def sandbox_interrupt(state: StateDir, node: str, *, environ: Mapping[str, str], progress: Progress) -> Interruption:
    """Take ``node`` away as a spot reclaim does, then let a replacement boot in its place."""
    from cluster_tools.services.sandbox import MARKER_ENV, SandboxOptions, sandbox_status, sandbox_up

    NODE_NAME.check(node)
    status = sandbox_status(state, with_nodes=True)
    if not status.running:
        raise SandboxError("the sandbox is not running", "start it: clustertools sandbox up")
    names = [n.name for n in status.nodes]
    if node not in names:
        raise SandboxError(f"the sandbox has no node {node!r} (nodes: {', '.join(names) or 'none'})",
                           "`clustertools sandbox status` lists them")
    paths = files.sandbox_paths(state.sandbox)
    env = {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    jobs = tuple(job for job, _ in _jobs_on(node, env))
    slurmd = next(c for c in status.components if c.name == "slurmd")
    progress(f"interrupting {node}: its slurmd and {len(jobs)} job(s) on it are killed, as a reclaimed instance's")
    victims = [slurmd.pid, *procs.sessions_of("slurmstepd", (MARKER_ENV, str(paths.root)))]
    for pid in victims:
        _kill(pid)
    _run(["scontrol", "update", f"nodename={node}", "state=DOWN", f"reason={REASON}"], env)
    progress(f"{node} is DOWN: Slurm ends its jobs as NODE_FAIL and requeues them")
    _wait(lambda: not [job for job, state in _jobs_on(node, env) if state in ("RUNNING", "COMPLETING")])
    _run(["scontrol", "update", f"nodename={node}", "state=RESUME"], env)
    progress(f"a new instance takes {node}'s place")
    sandbox_up(state, SandboxOptions(), environ=environ, progress=progress)  # restarts exactly what died: slurmd
    return Interruption(node=node, jobs=jobs, killed=len(victims))


def _kill(pid: int | None) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _run(argv: list[str], env: Mapping[str, str]) -> str:
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{' '.join(argv)} failed: {exc}") from None
    if done.returncode != 0:
        raise SandboxError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _jobs_on(node: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(job id, state) of every task on ``node`` (squeue's -w takes hostnames, and "localhost" is not one)."""
    lines = _run(["squeue", "-h", "-r", "-o", "%i|%N|%T"], env).splitlines()
    return [(job, state) for job, nodes, state in (line.split("|", 2) for line in lines if line.count("|") == 2)
            if nodes == node]


def _wait(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)
