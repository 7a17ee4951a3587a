"""Shared test helpers: run the real CLI in a subprocess, compare with golden files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def run_cli(
    *args: str,
    state: Path,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m cluster_tools ARGS`` as a user would run it, with its own state dir."""
    full_env = {**os.environ, "CLUSTERTOOLS_STATE_DIR": str(state), **(env or {})}
    full_env.pop("CLUSTERTOOLS_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "cluster_tools", *args],
        cwd=cwd,
        env=full_env,
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
    )


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode() if isinstance(result.stdout, bytes) else result.stdout


def err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr


def assert_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; UPDATE_GOLDEN=1 rewrites it (review the diff before committing)."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    expected = path.read_text()
    assert text.splitlines() == expected.splitlines(), f"differs from golden file {path}"


def sandbox_admin(state: Path, *argv: str) -> subprocess.CompletedProcess:
    """A Slurm admin command (scontrol update...) on the sandbox, run on this machine as root: the sandbox's
    login user may not, as on ParallelCluster (where it would take sudo on the head node)."""
    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths

    conf = sandbox_paths(state / "sandbox").slurm_conf
    return subprocess.run(
        list(argv),
        env={"SLURM_CONF": str(conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def no_connect(*_args, **_kwargs):
    """A ShellFactory for a test that expects no SSH: reaching a cluster fails the test."""
    raise AssertionError("no SSH expected")
