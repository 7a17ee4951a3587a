"""Fixtures. The sandbox fixture is a REAL Slurm + sshd + S3 endpoint on this machine, started once per
session through the CLI exactly as a user starts it, and stopped (and checked stopped) at the end."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.helpers import err, out, run_cli


@dataclass
class Sandbox:
    state: Path
    record: ClusterRecord
    status: dict

    def cli(self, *args: str, **kwargs):
        return run_cli(*args, state=self.state, **kwargs)


def start_sandbox(state: Path, *options: str) -> Sandbox:
    """A sandbox of its own; finished jobs leave squeue after 10 s (ParallelCluster keeps them 300 s), unless
    ``options`` say otherwise (the last --min-job-age wins)."""
    result = run_cli("sandbox", "up", "--json", "--min-job-age", "10", *options, state=state)
    assert result.returncode == 0, f"sandbox up failed:\n{err(result)}"
    return Sandbox(state=state, record=load_cluster(StateDir(state), "sandbox"), status=json.loads(out(result)))


def stop_sandbox(sandbox: Sandbox) -> None:
    from cluster_tools.services.sandbox.sandbox_lifecycle import MARKER_ENV
    from cluster_tools.transport.local_processes import find_marked

    result = sandbox.cli("sandbox", "down")
    assert result.returncode == 0, err(result)
    still = sandbox.cli("sandbox", "status", "--json")
    assert still.returncode == 3 and not json.loads(out(still))["running"]
    assert find_marked((MARKER_ENV, str(sandbox.state / "sandbox"))) == []


# Two static nodes (always up, as a queue's MinCount) of 32 CPUs each: tests do not wait for nodes to boot,
# and hundreds of tiny tasks run at once. The elastic tests start sandboxes of their own.
SHARED_SANDBOX = ("--nodes", "2", "--static-nodes", "2", "--cpus-per-node", "32")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    """The shared sandbox for integration tests (MaxArraySize 1001, MinJobAge 10 s, two static nodes)."""
    box = start_sandbox(tmp_path_factory.mktemp("state"), *SHARED_SANDBOX)
    yield box
    stop_sandbox(box)
    from cluster_tools.services.sandbox.sandbox_lifecycle import MARKER_ENV
    from cluster_tools.services.sandbox.sandbox_nodes import NODE_SCRATCH
    from cluster_tools.transport.local_processes import marked_values

    if not marked_values(MARKER_ENV):  # the last sandbox here stopped: its nodes' /tmp scratch went with it
        uid = json.loads((box.state / "sandbox" / "sandbox.json").read_text())["uid"]
        left = [name.format(uid=uid) for name in NODE_SCRATCH if (Path("/tmp") / name.format(uid=uid)).exists()]
        assert left == [], f"sandbox down left {left} in /tmp"


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's tmp_path, open to the sandbox's login user (ec2-user, not root): tasks read and write test
    files there, as a user's jobs read and write a shared filesystem. pytest makes its dirs 0700."""
    tmp_path.chmod(0o1777)  # sticky, as /tmp: munged refuses a world-writable dir above its seed file otherwise
    for parent in tmp_path.parents:
        if not parent.name or parent == Path("/tmp"):
            break
        if parent.stat().st_uid == os.getuid():
            parent.chmod(parent.stat().st_mode | 0o055)
    return tmp_path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty per-test state dir (no clusters known)."""
    path = tmp_path / "state"
    path.mkdir()
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sandbox)
