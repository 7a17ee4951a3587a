"""``clustertools init``: a new project with a commented project file and an example subject list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.model.project.project_file import PROJECT_FILE
from cluster_tools.render.templates import render_template

SUBJECTS_FILE = "subjects.txt"


@dataclass(frozen=True)
class InitResult:
    directory: Path
    written: tuple[Path, ...]


def project_name_for(directory: Path) -> str:
    """A valid project name from a directory name (``My Study!`` -> ``My-Study``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name).strip("-._")[:64]
    return name or "project"


def render_project_file(name: str, cluster: str, output: str) -> str:
    text = render_template("project/clustertools.yaml.j2", name=name, cluster=cluster, output=output)
    parse_project(text)  # what we write must load: a broken example would be our bug
    return text


def init_project(directory: Path, *, name: str | None, cluster: str, output: str | None, force: bool) -> InitResult:
    """Write clustertools.yaml and subjects.txt into ``directory``; refuses to overwrite unless ``force``."""
    name = name or project_name_for(directory)
    output = output or f"s3://clustertools-sandbox/{name}"
    targets = {  # rendered and checked before anything is made: a refused name leaves nothing behind
        directory / PROJECT_FILE: render_project_file(name, cluster, output),
        directory / SUBJECTS_FILE: render_template("project/subjects.txt"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(str(p) for p in existing)} already exist(s); nothing was written",
            "pass --force to overwrite",
        )
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return InitResult(directory=directory, written=tuple(targets))
