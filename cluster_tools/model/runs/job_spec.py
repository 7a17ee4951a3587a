"""The parts of the project file a run record keeps: where outputs go (``S3Location``) and what one task runs
(``JobSpec``). Their own module, with pydantic alone, so that reading a run (`status`, `logs`) does not import
the project file's cluster, bootstrap and storage models (issue 16, item 4: start-up)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cluster_tools.model.names import BUCKET_NAME, PARTITION

# S3 allows more, but these never need quoting anywhere (shell, URLs, Slurm options).
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._/=+-]*$")
_MEM_RE = re.compile(r"^[1-9][0-9]*[KMGT]?$")
# Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_WORKDIR_RE = re.compile(r"[A-Za-z0-9._-][A-Za-z0-9._/-]{0,255}")
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
# Every pattern here is applied with fullmatch: match with '$' lets a trailing newline through.
# An image reference (docker://ghcr.io/org/img@sha256:..., library/alpine:3.19) or a path to an image file.
# It becomes a word of the node bootstrap's arguments and of apptainer's command line: no spaces, quotes or
# shell syntax, whatever quotes it later.
_IMAGE_RE = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9._/:@+=-]{0,511}$")


class S3Location(BaseModel):
    """``s3://bucket[/prefix]`` split into its parts."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise ValueError("must be an s3:// URL, e.g. s3://my-bucket/results")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not BUCKET_NAME.is_valid(bucket):
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        if not _PREFIX_RE.fullmatch(prefix) or "//" in prefix:
            raise ValueError(f"the key prefix {prefix!r} may hold only letters, digits and . _ / = + -")
        if {".", ".."} & set(prefix.split("/")):  # S3 keeps them literally; a local copy of the keys would not
            raise ValueError(f"the key prefix {prefix!r} has a '.' or '..' part")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


class JobSpec(BaseModel):
    """What one task runs, and with what resources; the command line can override each."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    container: str | None = None
    container_args: list[str] | None = Field(
        default=None,
        max_length=256,
        description="run the image's own entrypoint (and working dir) with these arguments instead of a command; "
        "${SUBJECT}, ${INPUT_DIR}, ${OUTPUT_DIR}, ${RUN_ID}, ${ATTEMPT} and the subjects file's columns "
        "(${NAME}) are replaced in each, nothing else is expanded",
    )
    workdir: str | None = Field(
        default=None,
        description="a directory of the project (relative to clustertools.yaml), sent with the run: "
        "each task works in a copy of it, so `command: bash job.sh` runs as it does here",
    )
    cpus: int = Field(default=1, ge=1, le=1024)
    gpus: int = Field(default=0, ge=0, le=16, description="GPUs per task (Slurm --gres=gpu:N); 0: none")
    mem: str = "1G"
    time: str = "01:00:00"
    partition: str | None = None
    throttle: int | None = Field(default=None, ge=1)

    @field_validator("mem")
    @classmethod
    def _mem(cls, value: str) -> str:
        if not _MEM_RE.fullmatch(str(value)):
            raise ValueError("must be a Slurm memory size like 4G, 512M or 2000")
        return str(value)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME_RE.fullmatch(str(value)):
            raise ValueError("must be a Slurm time like 30, 01:30:00 or 1-00:00:00")
        return str(value)

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        return None if value is None else PARTITION.check(value)

    @field_validator("container")
    @classmethod
    def _container(cls, value: str | None) -> str | None:
        if value is not None and (not _IMAGE_RE.fullmatch(value) or ".." in value.split("/")):
            raise ValueError(
                "an image reference like docker://ghcr.io/org/image:1.0 (or a path to an image file): "
                "letters, digits and . _ / : @ + = - only, no spaces, quotes, ';' or '..' parts"
            )
        return value

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, value: str | None) -> str | None:
        if value is not None and (not _WORKDIR_RE.fullmatch(value) or ".." in value.split("/")):
            raise ValueError(
                "a directory relative to clustertools.yaml, like code/: letters, digits and . _ - /, "
                "no '..' parts, not absolute"
            )
        return value

    @field_validator("container_args")
    @classmethod
    def _container_args(cls, value: list[str] | None) -> list[str] | None:
        for arg in value or ():
            if len(arg) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in arg):
                raise ValueError("each argument: at most 4096 characters, no control characters (no newlines)")
        return value

    @model_validator(mode="after")
    def _entrypoint_needs_an_image(self) -> JobSpec:
        if self.container_args is not None and not self.container:
            raise ValueError("container_args are the arguments of job.container's entrypoint: set container too")
        return self

    @property
    def image_to_pull(self) -> str | None:
        """The image the node bootstrap pulls once into shared storage: a reference, not a file already there."""
        return self.container if self.container and not self.container.startswith("/") else None
