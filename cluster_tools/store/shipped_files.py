"""Where the folders clustertools ships beside its code live: ``cluster-config/`` (ParallelCluster
templates) and ``bootstrap/`` (the node bootstrap). In a source checkout (and an editable install) they
are the top-level folders of the repository; an installed wheel carries copies in
``cluster_tools/_shipped/`` (setup.py puts them there)."""

from __future__ import annotations

from pathlib import Path

from cluster_tools.errors import MissingDependency

_PACKAGE = Path(__file__).resolve().parents[1]  # cluster_tools/
# The distribution's name on the package index (`clustertools` there is an unrelated package).
REINSTALL = (
    "reinstall clustertools: pipx reinstall clustertools-pcluster, "
    "or pip install --force-reinstall clustertools-pcluster"
)


def shipped_dir(name: str, *, package: Path = _PACKAGE) -> Path:
    """``cluster-config`` or ``bootstrap``: the checkout's folder, else the installed copy."""
    for candidate in (package.parent / name, package / "_shipped" / name):
        if candidate.is_dir():
            return candidate
    raise MissingDependency(
        f"clustertools' {name}/ folder is missing (looked in {package.parent} and {package / '_shipped'})",
        REINSTALL,
    )


def cluster_config_dir() -> Path:
    return shipped_dir("cluster-config")


def bootstrap_dir() -> Path:
    return shipped_dir("bootstrap")


def template_path(name: str, *, package: Path = _PACKAGE) -> Path:
    """A file of the package's ``templates/`` run as it is (e.g. the sandbox's namespace scripts)."""
    path = package / "templates" / name
    if not path.is_file():
        raise MissingDependency(
            f"clustertools' file templates/{name} is missing",
            REINSTALL,
        )
    return path
