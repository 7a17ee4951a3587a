"""The one rule for each kind of name that becomes a path, a shell word or a Slurm value.

Regexes applied with ``fullmatch`` (``re.match`` with ``$`` lets a trailing newline through), and two
checks that only read the file system: ``confined`` (a path built from a name stays inside its
directory) and ``through_link`` (a download would not follow a symlink already there). Every module
that takes such a name from outside (the CLI, the project file, a subject list, a record read back,
an S3 listing) checks it here, so a rule changes in one place.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import ConfigError


class InvalidName(ConfigError, ValueError):
    """A name that breaks its rule. A ValueError too, so pydantic validators report it per field."""


@dataclass(frozen=True)
class NameRule:
    """One kind of name: its pattern (always fullmatched) and how to say it to a person."""

    kind: str
    pattern: re.Pattern[str]
    rule: str
    hint: str | None = None

    def is_valid(self, value: object) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None

    def check(self, value: object) -> str:
        """``value`` itself when it follows the rule; else InvalidName, its text shown escaped on one line."""
        if not self.is_valid(value):
            raise InvalidName(f"{shown(value)} is not a {self.kind}: {self.rule}", self.hint)
        return value  # type: ignore[return-value]


def shown(value: object, limit: int = 60) -> str:
    """repr(): newlines and control characters escaped, so a message stays one visible line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 10]}... ({len(str(value))} chars)"


_WORD = "letters, digits, '.', '_' and '-'"

# Every name below starts with a letter or digit: never '.', '..', a hidden file or an option (-x).
PROJECT_NAME = NameRule(
    "project name",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"),
    f"{_WORD} only, at most 64, starting with a letter or digit",
)
# A run's name (`submit --name`, default the project's) starts its run id: the same rule as a project's.
RUN_NAME = NameRule("run name", PROJECT_NAME.pattern, PROJECT_NAME.rule, "e.g. --name lr-sweep")
# ``<name>-YYYYmmdd-HHMMSS-hash6``: a file of the state dir, a directory on the head node, an S3 prefix,
# a Slurm job name and comment.
RUN_ID = NameRule(
    "run id",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}"),
    f"{_WORD} only, starting with a letter or digit",
    "`clustertools runs` lists them",
)
# ParallelCluster's own rule for cluster names; used for every provider so names carry over.
CLUSTER_NAME = NameRule(
    "cluster name",
    re.compile(r"[A-Za-z][A-Za-z0-9-]{0,59}"),
    "start with a letter; letters, digits and '-' only; at most 60",
    "`clustertools list` shows the known clusters",
)
SUBJECT_ID = NameRule(
    "subject ID",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"),
    f"only {_WORD}, starting with a letter or digit, at most 128",
)
NODE_NAME = NameRule(
    "node name",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}"),
    f"{_WORD} only, starting with a letter or digit",
    "`clustertools ssh -- sinfo -N` lists the nodes",
)
# A Slurm partition: a word of an #SBATCH line.
PARTITION = NameRule("partition", PROJECT_NAME.pattern, PROJECT_NAME.rule)
# ParallelCluster's NameValidator for queues and compute resources; it refuses "default" too.
QUEUE_NAME = NameRule(
    "queue name",
    re.compile(r"(?!default\Z)[a-z][a-z0-9-]{0,24}"),
    "lowercase letters, digits and '-', starting with a letter, at most 25, not 'default' (ParallelCluster's rule)",
)
# S3's rule for the buckets clustertools reads and writes (no '..': S3 refuses it within the name).
BUCKET_NAME = NameRule(
    "S3 bucket name",
    re.compile(r"(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    "lowercase letters, digits, '.' and '-', 3 to 63, starting and ending with a letter or digit",
    "give the bucket's name alone, without s3://",
)


class PathEscape(ConfigError):
    """A path built from a name that resolves outside its directory (a '..', a symlink)."""


def confined(directory: Path, path: Path) -> Path:
    """``path`` when it resolves inside ``directory`` (symlinks followed); else PathEscape."""
    root = os.path.realpath(directory)
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root or target == root:
        raise PathEscape(f"{shown(str(path), 120)} would be outside {directory}", "use a plain name")
    return path


def safe_relative(path: str) -> bool:
    """A relative path of plain parts: no '..', '.', empty part (so not absolute), or NUL."""
    parts = path.split("/")
    return "\x00" not in path and not {"", ".", ".."} & set(parts)


def through_link(root: Path, path: Path, linkless: set[Path]) -> bool:
    """Whether ``path`` or a directory between ``root`` and it is a symlink (``root`` itself is the user's
    choice), so that writing there would land elsewhere. Directories found plain are added to ``linkless``:
    one lstat per directory, not per file."""
    if path.is_symlink():
        return True
    unchecked = []
    directory = path.parent
    while directory != root and directory not in linkless and directory != directory.parent:
        unchecked.append(directory)
        directory = directory.parent
    for directory in reversed(unchecked):  # from the top: a link stops the walk before it is followed
        if directory.is_symlink():
            return True
        linkless.add(directory)
    return False
