"""The package's shape (docs/architecture.md): every module in a feature package of its layer, no two
modules with one name, and the top level holding only packages and the package face. The import rule
itself is lint-imports' (pyproject.toml), run by dev/check before the tests."""

from __future__ import annotations

import collections
from pathlib import Path

import cluster_tools

PACKAGE = Path(cluster_tools.__file__).parent
# Files shipped to the nodes and run there (cancel_run.py), not modules of this package.
SHIPPED = PACKAGE / "templates"
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "errors.py"}


def modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if SHIPPED not in p.parents and p.name != "__init__.py"]


def test_no_two_modules_share_a_name():
    by_name = collections.defaultdict(list)
    for path in modules():
        by_name[path.stem].append(str(path.relative_to(PACKAGE)))
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_the_top_level_holds_packages_and_the_package_face_only():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= TOP_LEVEL_MODULES, f"move {sorted(loose - TOP_LEVEL_MODULES)} into a feature package"


def test_every_folder_of_modules_is_a_package():
    folders = {p.parent for p in modules()}
    assert [str(f.relative_to(PACKAGE)) for f in folders if not (f / "__init__.py").is_file()] == []
