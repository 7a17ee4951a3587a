"""An installed clustertools carries what it needs beside its code: the wheel holds the ParallelCluster
templates (cluster-config/), the node bootstrap (bootstrap/, its script still executable), the run
templates and the price table; and resources.py finds them from an installed copy, not only from a
checkout. The wheel is built offline from a copy of the tree (no build isolation: dev/setup installs a
setuptools new enough into the venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cluster_tools.errors import MissingDependency
from cluster_tools.store.shipped_files import shipped_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("cluster_tools", "cluster-config", "bootstrap"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "_shipped"))
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("clustertools-*.whl")
    return path


def test_the_wheel_ships_templates_bootstrap_and_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        script = archive.getinfo("cluster_tools/_shipped/bootstrap/on-node-configured.sh")
        mode = script.external_attr >> 16
    for template in (ROOT / "cluster-config").rglob("*.j2"):
        assert (
            f"cluster_tools/_shipped/cluster-config/{template.relative_to(ROOT / 'cluster-config').as_posix()}" in names
        )
    assert "cluster_tools/templates/run/wrapper.sh.j2" in names and "cluster_tools/data/prices.json" in names
    assert mode & 0o111, "the bootstrap script must stay executable"


def test_an_installed_copy_finds_its_folders(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cluster_tools.store import shipped_files as resources; print(resources.cluster_config_dir()); "
            "print(resources.bootstrap_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site")},
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [
        str(tmp_path / "site" / "cluster_tools" / "_shipped" / "cluster-config"),
        str(tmp_path / "site" / "cluster_tools" / "_shipped" / "bootstrap"),
    ]


def test_a_checkout_uses_its_own_folders_and_a_broken_install_says_so(tmp_path):
    assert shipped_dir("cluster-config") == ROOT / "cluster-config"
    with pytest.raises(MissingDependency, match="bootstrap/ folder is missing"):
        shipped_dir("bootstrap", package=tmp_path / "cluster_tools")
