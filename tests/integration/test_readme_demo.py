"""The README's first command stays true: dev/demo runs end to end on this machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.sandbox
def test_dev_demo_runs_end_to_end():
    if not (ROOT / ".venv" / "bin" / "clustertools").exists():
        pytest.fail("dev/demo runs the tool from .venv: run dev/setup first (the README's commands do)")
    env = {k: v for k, v in os.environ.items() if k != "CLUSTERTOOLS_STATE_DIR"}
    result = subprocess.run(
        [str(ROOT / "dev" / "demo")], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from sub-0001" in result.stdout and "demo finished" in result.stdout
    assert "succeeded 4" in result.stdout
