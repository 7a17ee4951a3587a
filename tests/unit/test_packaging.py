"""An installed clustertools carries what it needs beside its code: the wheel holds the ParallelCluster
templates (cluster-config/), the node bootstrap (bootstrap/, its script still executable), the run
templates and the price table; and store/shipped_files.py finds them from an installed copy, not only from a
checkout. Installed into a fresh virtualenv under its distribution name (clustertools-pcluster: `clustertools`
on the package index is an unrelated astronomy package), its `clustertools` command inits, validates and renders
from its own copy of cluster-config/. The wheel is built offline from a copy of the tree (no build isolation:
dev/setup installs a setuptools new enough into the venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from cluster_tools.errors import MissingDependency
from cluster_tools.store.shipped_files import shipped_dir

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "clustertools-pcluster"  # pyproject.toml [project] name


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
    (path,) = out.glob(f"{DISTRIBUTION.replace('-', '_')}-*.whl")
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


def test_the_wheel_is_named_for_the_index_and_keeps_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        headers = archive.read(metadata).decode().split("\n\n", 1)[0].splitlines()
        scripts = archive.read(entry_points).decode()
    assert f"Name: {DISTRIBUTION}" in headers
    assert "clustertools = cluster_tools.cli:main" in scripts


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, Path]:
    """A fresh virtualenv holding the wheel, as `pipx install` makes one: (its bin/, its site-packages).

    The wheel goes in with --no-deps, and the dependencies (aws-parallelcluster, boto3, pydantic...: hundreds of
    MB) are not installed again offline: a .pth line puts this .venv's site-packages after the fresh venv's own.
    So the wheel's cluster_tools comes first, and the checkout's editable install is not active there (a plain
    path line in a .pth runs none of that directory's own .pth files). `--system-site-packages` would not do: a
    venv made from this .venv's python gets the base interpreter's site-packages, not this venv's."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    done = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    Path(site, "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin", Path(site)


def test_the_installed_command_inits_validates_and_renders_from_its_own_copy(installed, tmp_path):
    bin_dir, site = installed
    shipped = site / "cluster_tools" / "_shipped" / "cluster-config"
    marker = "# rendered from the installed copy's cluster-config/"
    for template in shipped.glob("[!_]*.yaml.j2"):  # only in the installed copy: a render from it says so
        template.write_text(template.read_text() + marker + "\n")
    work = tmp_path / "project"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CLUSTERTOOLS_STATE_DIR": str(tmp_path / "state"),
        "LANG": "C.UTF-8",
    }

    def clustertools(*args: str) -> str:
        done = subprocess.run(
            [str(bin_dir / "clustertools"), *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"clustertools {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import cluster_tools; print(cluster_tools.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.stdout.strip() == str(site / "cluster_tools" / "__init__.py"), where.stderr
    clustertools("init")
    assert (work / "clustertools.yaml").is_file() and (work / "subjects.txt").is_file()
    assert "passes ParallelCluster's schema" in clustertools("validate", "--allowed-ip", "203.0.113.7/32")
    rendered = clustertools("render", "cluster")
    assert rendered.startswith("# ParallelCluster v3 config") and marker in rendered
    assert marker not in (ROOT / "cluster-config" / "spot-cpu.yaml.j2").read_text()
