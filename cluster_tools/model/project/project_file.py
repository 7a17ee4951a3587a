"""Where the project file is: found as git finds its repository. Its own module, importing nothing, so that every
command can look for it without loading the project's models (`status RUN` never reads it)."""

from __future__ import annotations

from pathlib import Path

PROJECT_FILE = "clustertools.yaml"


def find_project_file(start: Path) -> Path | None:
    """The nearest clustertools.yaml in ``start`` or its parents, like git finds its repo."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None
