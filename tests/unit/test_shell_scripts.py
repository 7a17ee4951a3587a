"""Every shell script of the project passes shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shell_scripts() -> list[Path]:
    # Jinja templates are checked once rendered (tests/unit/test_run_scripts.py), not as templates.
    candidates = [
        *ROOT.glob("dev/*"),
        ROOT / ".ci" / "run",
        *ROOT.glob("bootstrap/**/*"),
        *ROOT.glob("cluster_tools/templates/**/*.sh"),
    ]
    return sorted(
        p
        for p in candidates
        if p.is_file() and p.read_bytes()[:64].startswith(b"#!") and b"sh" in p.read_bytes()[:64].split(b"\n")[0]
    )


def test_there_are_scripts_to_check():
    assert {p.name for p in shell_scripts()} >= {"setup", "demo", "run", "head-namespace.sh", "node-namespace.sh"}


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script: Path):
    assert shutil.which("shellcheck"), "shellcheck is missing: dev/setup installs it"
    result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
