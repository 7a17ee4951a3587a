"""``job.workdir``: the user's own code, sent with the run and made each task's working directory.

A directory of the project (``code/``, relative to clustertools.yaml) is packed into one gzipped tar, the
same bytes for the same files (sorted, root-owned, time 0) so its sha256 names the code: it goes into the
run's spec hash (changed code is another run) and its record. It is sent once per run to the head node,
unpacked beside the run's scripts (home is shared with every node), and each task works in a copy of its
own, so `command: bash job.sh` runs as it does on the user's machine. What cannot be code is refused in one
line: a path leaving the project, a symlink leaving the directory, more than MAX_BYTES. Version-control and
cache directories are left out.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import ConfigError

MAX_BYTES = 100 * 1024 * 1024
LEFT_OUT = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", ".venv", ".mypy_cache", ".pytest_cache"}
)


@dataclass(frozen=True)
class PackedWorkdir:
    data: bytes  # the .tar.gz
    sha256: str
    files: int
    size: int  # bytes of the files, before compression


def pack_workdir(project_dir: Path, relative: str, *, max_bytes: int = MAX_BYTES) -> PackedWorkdir:
    top = project_dir.resolve()
    root = (project_dir / relative).resolve()
    where = f"job.workdir {relative}"
    if root != top and top not in root.parents:
        raise ConfigError(f"{where} is outside the project's directory {top}", "name a directory inside it, e.g. code/")
    if not root.is_dir():
        raise ConfigError(
            f"{where} is not a directory (looked for {root})", "job.workdir is relative to clustertools.yaml"
        )
    entries = _entries(root, where)
    size = sum(path.stat().st_size for _, path in entries if path.is_file() and not path.is_symlink())
    if size > max_bytes:
        raise ConfigError(
            f"{where} holds {size / 2**20:.1f} MiB; code sent with a run may be at most {max_bytes / 2**20:.0f} MiB",
            "keep data out of it: stage it from S3 (storage.input)",
        )
    data = _tar_gz(entries)
    files = sum(p.is_file() and not p.is_symlink() for _, p in entries)
    return PackedWorkdir(data, hashlib.sha256(data).hexdigest(), files, size)


def _entries(root: Path, where: str) -> list[tuple[str, Path]]:
    """(name in the archive, path) of every directory, file and symlink under ``root``, sorted."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in LEFT_OUT)
        for name in [*dirs, *sorted(files)]:
            path = Path(directory, name)
            if path.is_symlink():
                target = path.resolve()
                if target != root and root not in target.parents:
                    raise ConfigError(
                        f"{where}: {path.relative_to(root)} links outside it (to {os.readlink(path)})",
                        "copy the file in, or stage it from S3",
                    )
            elif not (path.is_file() or path.is_dir()):
                raise ConfigError(f"{where}: {path.relative_to(root)} is neither a file nor a directory")
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _tar_gz(entries: list[tuple[str, Path]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in entries:
            info = tar.gettarinfo(str(path), arcname=name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = (0o755 if info.isdir() or info.mode & 0o111 else 0o644) if not info.issym() else info.mode
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)
