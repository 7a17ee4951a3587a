"""A small OCI image made from files, with no container engine: what the sandbox's registry serves.

Pure: the same files and config give the same bytes, so the same digest (tar and gzip with fixed times and
owners). One layer; the image config carries what ``docker inspect`` shows (Entrypoint, Cmd, WorkingDir,
Env, Labels), per the OCI image spec (github.com/opencontainers/image-spec: layer.md, config.md,
manifest.md).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class ImageFile:
    """One entry of the image's root filesystem: a file (``data``), a directory, or a symlink (``target``)."""

    path: str  # relative to /, no leading slash
    data: bytes | None = None
    mode: int = 0o644
    target: str | None = None


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = "/"
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OciImage:
    blobs: dict[str, bytes]  # digest ("sha256:...") -> content: the layer and the config
    manifest: bytes

    @property
    def digest(self) -> str:
        """The manifest's digest: what a registry answers as Docker-Content-Digest, what ``@sha256:`` names."""
        return sha256_digest(self.manifest)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: list[ImageFile]) -> bytes:
    """An uncompressed tar of ``files``, root-owned, time 0, parents first."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(entry.path.strip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            info.mode = entry.mode
            if entry.target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            elif entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return out.getvalue()


def build_image(files: list[ImageFile], config: ImageConfig, *, architecture: str = "amd64") -> OciImage:
    tar = layer_tar(files)
    layer = gzip.compress(tar, mtime=0)
    image_config = {
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": list(config.env),
            "Entrypoint": list(config.entrypoint) or None,
            "Cmd": list(config.cmd) or None,
            "WorkingDir": config.workdir,
            "Labels": dict(config.labels) or None,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    }
    config_blob = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": sha256_digest(config_blob), "size": len(config_blob)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": sha256_digest(layer), "size": len(layer)}],
    }
    return OciImage(
        blobs={sha256_digest(layer): layer, sha256_digest(config_blob): config_blob},
        manifest=json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(),
    )
