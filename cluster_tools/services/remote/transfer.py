"""`clustertools put | get`: copy files to or from the head node over SFTP, as scp would.

A plan is made first (what goes where, what would be overwritten); nothing is copied when the plan
is refused. Each file lands whole (temp name + rename); an existing file is replaced only with force.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.names import safe_relative, shown, through_link

if TYPE_CHECKING:
    from cluster_tools.transport.remote_shell import ShellFactory


@dataclass(frozen=True)
class FileCopy:
    source: str
    target: str
    size: int
    mode: int


@dataclass(frozen=True)
class CopyPlan:
    direction: Literal["put", "get"]
    target: str  # the file or directory the copy makes on the other side
    directories: tuple[str, ...]  # to create there first, parents before children
    files: tuple[FileCopy, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "target": self.target,
            "files": len(self.files),
            "directories": len(self.directories),
            "bytes": self.total_bytes,
        }


class CopyListener(Protocol):
    """What a copy tells as it goes; the CLI draws a progress bar from it."""

    def start(self, plan: CopyPlan) -> None: ...
    def file(self, copy: FileCopy) -> None: ...
    def progress(self, copy: FileCopy, done: int) -> None: ...


class Listener:
    """A CopyListener that ignores what it is told."""

    def start(self, plan: CopyPlan) -> None: ...
    def file(self, copy: FileCopy) -> None: ...
    def progress(self, copy: FileCopy, done: int) -> None: ...


def remote_path(text: str) -> str:
    """A path as SFTP takes it: ``~`` and ``~/x`` are the home directory (where relative paths start)."""
    if text in ("", "~", "~/"):
        return "."
    if text.startswith("~/"):
        return text[2:]
    if text.startswith("~"):
        raise ConfigError(f"{text!r}: another user's home (~user) is not supported", "give the absolute path")
    return text


def _conflicts(paths: list[str], where: str) -> ConfigError:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return ConfigError(f"already on {where}: {shown}", "pass --force to replace them")


def _local_tree(root: Path) -> tuple[list[str], list[tuple[str, int, int]]]:
    """(directories, files as (path, size, mode)) under ``root``, relative, parents first; links to
    directories are not entered, other special files are skipped."""
    directories, files = [], []
    for current, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(current).relative_to(root)
        for name in list(dirnames):
            if (Path(current) / name).is_symlink():
                dirnames.remove(name)
            else:
                directories.append((base / name).as_posix())
        for name in sorted(filenames):
            info = (Path(current) / name).stat() if (Path(current) / name).exists() else None
            if info is not None and stat_mode.S_ISREG(info.st_mode):
                files.append(((base / name).as_posix(), info.st_size, info.st_mode))
    return directories, files


def plan_put(remote, local: Path, destination: str | None, *, recursive: bool, force: bool) -> CopyPlan:
    """Copy ``local`` to ``destination`` on the head node (default: the home directory); into it
    when it is a directory."""
    if not local.exists():
        raise ConfigError(f"no such file: {local}")
    if local.is_dir() and not recursive:
        raise ConfigError(f"{local} is a directory", "pass -r to copy a directory")
    dest = remote_path(destination or ".")
    found = remote.stat(dest)
    if found is not None and found.is_dir:
        target = posixpath.normpath(posixpath.join(dest, local.resolve().name))
    elif dest.endswith("/"):
        raise ConfigError(f"no directory {dest} on the head node")
    else:
        parent = posixpath.dirname(dest.rstrip("/")) or "."
        if (up := remote.stat(parent)) is None or not up.is_dir:
            raise ConfigError(f"no directory {parent} on the head node")
        target = dest
    existing = remote.stat(target)
    if local.is_file():
        if existing is not None and existing.is_dir:
            raise ConfigError(f"{target} is a directory on the head node")
        if existing is not None and not force:
            raise _conflicts([target], "the head node")
        info = local.stat()
        return CopyPlan("put", target, (), (FileCopy(str(local), target, info.st_size, info.st_mode),))
    if existing is not None and not existing.is_dir:
        raise ConfigError(f"{target} is a file on the head node, not a directory")
    there = {e.path: e for e in remote.walk(target)} if existing is not None else {}
    directories, files = _local_tree(local)
    clash = [f"{target}/{rel}" for rel, _, _ in files if rel in there and there[rel].is_dir]
    if clash:
        raise ConfigError(f"directories on the head node where files would go: {', '.join(clash[:5])}")
    taken = [f"{target}/{rel}" for rel, _, _ in files if rel in there]
    if taken and not force:
        raise _conflicts(taken, "the head node")
    new_dirs = ([] if existing is not None else [target]) + [f"{target}/{d}" for d in directories if d not in there]
    return CopyPlan(
        "put",
        target,
        tuple(new_dirs),
        tuple(FileCopy(str(local / rel), f"{target}/{rel}", size, mode) for rel, size, mode in files),
    )


def plan_get(remote, source: str, local: str | None, *, recursive: bool, force: bool) -> CopyPlan:
    """Copy ``source`` from the head node to ``local`` (default: the current directory); into it
    when it is a directory."""
    src = remote_path(source)
    found = remote.stat(src)
    if found is None:
        raise ConfigError(f"no such file on the head node: {source}")
    if found.is_dir and not recursive:
        raise ConfigError(f"{source} is a directory on the head node", "pass -r to copy a directory")
    if not found.is_dir and not found.is_file:
        raise ConfigError(f"{source} is not a regular file")
    dest = Path(local or ".")
    name = posixpath.basename(posixpath.normpath(src)) if src != "." else "home"
    if dest.is_dir():
        target = dest / name
    elif (local or "").endswith("/"):
        raise ConfigError(f"no directory {local}")
    elif not dest.parent.is_dir():
        raise ConfigError(f"no directory {dest.parent}")
    else:
        target = dest
    if found.is_file:
        if target.is_dir():
            raise ConfigError(f"{target} is a directory")
        if target.exists() and not force:
            raise _conflicts([str(target)], "this machine")
        return CopyPlan("get", str(target), (), (FileCopy(src, str(target), found.size, found.mode),))
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file, not a directory")
    entries = remote.walk(src)
    _refuse_escapes(target, entries)
    clash = [str(target / e.path) for e in entries if not e.is_dir and (target / e.path).is_dir()]
    if clash:
        raise ConfigError(f"directories here where files would go: {', '.join(clash[:5])}")
    taken = [str(target / e.path) for e in entries if not e.is_dir and (target / e.path).exists()]
    if taken and not force:
        raise _conflicts(taken, "this machine")
    new_dirs = ([] if target.is_dir() else [str(target)]) + [
        str(target / e.path) for e in entries if e.is_dir and not (target / e.path).is_dir()
    ]
    return CopyPlan(
        "get",
        str(target),
        tuple(new_dirs),
        tuple(FileCopy(f"{src}/{e.path}", str(target / e.path), e.size, e.mode) for e in entries if not e.is_dir),
    )


def _refuse_escapes(target: Path, entries) -> None:
    """Names from the head node are data: none may climb out of ``target`` ('..', '/') or land through a
    symlink already here (``target``'s parent is the destination the user gave)."""
    linkless: set[Path] = set()
    bad = [
        e.path for e in entries if not safe_relative(e.path) or through_link(target.parent, target / e.path, linkless)
    ]
    if bad:
        raise ConfigError(
            f"refused: {', '.join(shown(p) for p in bad[:5])} would land outside {target} "
            "(a '..' or a symbolic link on the way); nothing was copied",
            "remove the link, or copy into an empty directory",
        )


def execute(remote, plan: CopyPlan, listener: CopyListener) -> None:
    listener.start(plan)
    for directory in plan.directories:
        if plan.direction == "put":
            remote.mkdir(directory)
        else:
            Path(directory).mkdir(exist_ok=True)
    for copy in plan.files:
        listener.file(copy)

        def report(done: int, _total: int, copy: FileCopy = copy) -> None:
            listener.progress(copy, done)

        if plan.direction == "put":
            remote.upload(Path(copy.source), copy.target, mode=copy.mode, progress=report)
        else:
            remote.download(copy.source, Path(copy.target), mode=copy.mode, progress=report)
        listener.progress(copy, copy.size)


def copy_files(
    record: ClusterRecord,
    direction: Literal["put", "get"],
    source: str,
    destination: str | None,
    *,
    recursive: bool,
    force: bool,
    listener: CopyListener,
    connect: ShellFactory,
    on_new_host_key: Callable[[str, str], None] | None = None,
) -> CopyPlan:
    """Plan, then copy, over one connection; returns what was copied."""
    with connect(record, on_new_host_key=on_new_host_key) as conn, conn.files() as remote:
        if direction == "put":
            plan = plan_put(remote, Path(source), destination, recursive=recursive, force=force)
        else:
            plan = plan_get(remote, source, destination, recursive=recursive, force=force)
        execute(remote, plan, listener)
    return plan
