"""``bootstrap:`` of clustertools.yaml: what the node bootstrap (bootstrap/on-node-configured.sh) installs.

Everything it downloads to run as root on every node is pinned by its sha256 here: the Miniforge installer
and, with ``container_runtime: apptainer``, apptainer's release package. Which runtime fits which OS is
cluster_tools.model.nodes.container_runtimes' table; the project checks the pair at load.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
# https:// or s3:// with the characters of a plain URL path: no query string (a pre-signed URL would be
# stored in the cluster's config), no spaces, quotes or shell syntax.
_INSTALLER_URL_RE = re.compile(r"^(https|s3)://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?/[A-Za-z0-9._~/+=-]*$")
_ENV_FILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$")
# A release of github.com/apptainer/apptainer (no release candidates): it becomes part of a download URL.
_APPTAINER_VERSION_RE = re.compile(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$")

# Where the environment file lands under the bootstrap prefix: bootstrap/ itself has no env/ folder.
ENV_SUBDIR = "env/"


class BootstrapSettings(BaseModel):
    """What the node bootstrap (bootstrap/on-node-configured.sh) installs on the cluster: Miniforge, verified
    by its sha256, the project's conda environment, solved once into shared storage, and the container runtime
    that runs ``job.container`` (pulled once into shared storage)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    miniforge_url: str | None = Field(default=None, description="the Miniforge installer: https:// or an s3:// mirror")
    miniforge_sha256: str | None = Field(default=None, description="its sha256 (64 hex digits); required with the URL")
    env_file: str | None = Field(default=None, description="a conda environment file, relative to the project dir")
    container_runtime: Literal["enroot", "docker", "apptainer", "podman"] | None = Field(
        default=None,
        description="what runs job.container; default: the OS's (enroot, which ParallelCluster's AMIs "
        "ship; docker on Rocky)",
    )
    apptainer_version: str | None = Field(default=None, description="apptainer's release to install, e.g. 1.4.5")
    apptainer_sha256: str | None = Field(
        default=None,
        description="the sha256 of that release's package for the cluster's OS: "
        "apptainer_<version>_amd64.deb (Ubuntu) or apptainer-<version>-1.x86_64.rpm (Rocky)",
    )

    @field_validator("miniforge_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("https://", "s3://")):
            raise ValueError("must be an https:// or s3:// URL of the Miniforge installer")
        if "?" in value or "#" in value:
            raise ValueError(
                "no query string: a pre-signed URL would be stored in the cluster's config; "
                "use an s3:// mirror (read with the node's role) or a plain https:// URL"
            )
        if not _INSTALLER_URL_RE.fullmatch(value):
            raise ValueError("letters, digits and . _ ~ / + = - only after the host: no spaces, quotes or ';'")
        return value

    @field_validator("miniforge_sha256")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_RE.fullmatch(value):
            raise ValueError("must be the installer's sha256: 64 hex digits (sha256sum prints it)")
        return None if value is None else value.lower()

    @field_validator("apptainer_version")
    @classmethod
    def _apptainer_version(cls, value: str | None) -> str | None:
        if value is not None and not _APPTAINER_VERSION_RE.fullmatch(value):
            raise ValueError("a release of github.com/apptainer/apptainer like 1.4.5 (quoted in YAML)")
        return value

    @field_validator("apptainer_sha256")
    @classmethod
    def _apptainer_sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_RE.fullmatch(value):
            raise ValueError("must be the release package's sha256: 64 hex digits (sha256sum prints it)")
        return None if value is None else value.lower()

    @field_validator("env_file")
    @classmethod
    def _env_file(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.split("/")
        if not _ENV_FILE_RE.fullmatch(value) or ".." in parts or "" in parts or "." in parts:
            raise ValueError(
                "a path inside the project dir like environment.yml or envs/study.yml: "
                "letters, digits and . _ / - only, no '..'"
            )
        return value

    @model_validator(mode="after")
    def _together(self) -> BootstrapSettings:
        if self.miniforge_url and not self.miniforge_sha256:
            # An installer that runs as root on every cluster is never taken on trust.
            raise ValueError("miniforge_url needs miniforge_sha256 (the installer is verified before it runs)")
        if self.miniforge_sha256 and not self.miniforge_url:
            raise ValueError("miniforge_sha256 is given without miniforge_url")
        if self.env_file and not self.miniforge_url:
            raise ValueError("env_file needs miniforge_url and miniforge_sha256 (conda comes from Miniforge)")
        pinned = bool(self.apptainer_version and self.apptainer_sha256)
        if self.container_runtime == "apptainer" and not pinned:
            # A package that runs as root on every node is never taken on trust either.
            raise ValueError(
                "container_runtime apptainer is installed from its release package, verified before "
                "install: set apptainer_version and apptainer_sha256"
            )
        if (self.apptainer_version or self.apptainer_sha256) and (self.container_runtime != "apptainer" or not pinned):
            raise ValueError("apptainer_version and apptainer_sha256 go together, with container_runtime: apptainer")
        return self

    @property
    def env_file_key(self) -> str | None:
        """The environment file's name under the bootstrap prefix (what ``--env-file`` says to the script)."""
        return ENV_SUBDIR + self.env_file.rsplit("/", 1)[-1] if self.env_file else None

    @property
    def installer_bucket(self) -> str | None:
        """The bucket of an s3:// installer: every node needs read access to it."""
        if self.miniforge_url and self.miniforge_url.startswith("s3://"):
            return self.miniforge_url[len("s3://") :].split("/", 1)[0]
        return None
