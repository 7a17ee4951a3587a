"""bootstrap/ and the project's environment file sent to the output bucket, each object carrying its sha256 so an
unchanged file is not sent again: as `up`, `sandbox bootstrap` and `bootstrap refresh` send them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster_tools.model.progress import Progress
from cluster_tools.model.project.bootstrap_settings import ENV_SUBDIR


@dataclass(frozen=True)
class BootstrapFile:
    key: str  # the object's key in the output bucket
    sha256: str
    action: str  # "upload" (new or changed), "unchanged"; a dry run only plans


def sync_project_bootstrap(
    s3: Any,
    bucket: str,
    prefix: str,
    root: Path,
    files: Sequence[Path],
    env_file: Path | None,
    *,
    upload: bool,
    progress: Progress | None = None,
) -> list[BootstrapFile]:
    """bootstrap/ (``files`` of ``root``) under ``prefix`` and the project's environment file under its env/, as
    `up`, `sandbox bootstrap` and `bootstrap refresh` send them; each file said to ``progress`` when given."""
    uploads = sync_bootstrap(s3, bucket, prefix, root, files, upload=upload)
    if env_file is not None:
        uploads += sync_bootstrap(s3, bucket, prefix + ENV_SUBDIR, env_file.parent, [env_file], upload=upload)
    if progress is not None:
        for item in uploads:
            verb = ("uploaded" if upload else "would upload") if item.action == "upload" else "unchanged"
            progress(f"{verb} s3://{bucket}/{item.key}")
    return uploads


def sync_bootstrap(
    s3: Any, bucket: str, prefix: str, root: Path, files: Sequence[Path], *, upload: bool
) -> list[BootstrapFile]:
    """Each file of ``root`` under ``prefix`` with its sha256 as object metadata; a file whose object already
    carries the same sha256 is skipped. ``upload=False`` only plans (reads the metadata, writes nothing)."""
    from cluster_tools.transport.aws_session import aws_failure_of
    from cluster_tools.transport.s3 import translate_s3_error

    planned = []
    for path in files:
        data = path.read_bytes()
        digest, key = hashlib.sha256(data).hexdigest(), prefix + path.relative_to(root).as_posix()
        try:
            stored = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256")
        except Exception as exc:
            failure = aws_failure_of(exc)
            if failure is None or failure.code not in ("404", "NoSuchKey", "NotFound"):
                raise translate_s3_error(exc, f"check s3://{bucket}/{key}", bucket=bucket) from None
            stored = None
        action = "unchanged" if stored == digest else "upload"
        if upload and action == "upload":
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": digest})
            except Exception as exc:
                raise translate_s3_error(exc, f"upload s3://{bucket}/{key}", bucket=bucket) from None
        planned.append(BootstrapFile(key, digest, action))
    return planned
