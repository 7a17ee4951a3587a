"""Push an image to an OCI registry over its HTTP API (the Distribution spec: blobs, then the manifest).

Only the sandbox's own registry on loopback uses it: plain HTTP, no auth, never a proxy. Written here,
not by shelling out to skopeo or podman, so that `sandbox up` needs no container engine on this machine
and no image store outside the sandbox's directory: a push is four kinds of HTTP request.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from cluster_tools.errors import SandboxError
from cluster_tools.render.oci_image import MANIFEST_TYPE, OciImage


@dataclass(frozen=True)
class Registry:
    base_url: str  # http://127.0.0.1:PORT

    def _request(
        self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(
            urllib.parse.urljoin(self.base_url, url), data=data, method=method, headers=headers or {}
        )
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except OSError as exc:
            raise SandboxError(
                f"the sandbox's registry at {self.base_url} did not answer: {exc}", "clustertools sandbox status"
            ) from None

    def has_blob(self, name: str, digest: str) -> bool:
        return self._request("HEAD", f"/v2/{name}/blobs/{digest}")[0] == 200

    def put_blob(self, name: str, digest: str, data: bytes) -> None:
        status, headers, body = self._request("POST", f"/v2/{name}/blobs/uploads/")
        location = headers.get("Location")
        if status != 202 or not location:
            raise SandboxError(f"the registry refused an upload to {name}: HTTP {status} {body[:200]!r}")
        sep = "&" if "?" in location else "?"
        status, _, body = self._request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise SandboxError(f"the registry refused blob {digest} of {name}: HTTP {status} {body[:200]!r}")

    def push(self, name: str, tag: str, image: OciImage) -> str:
        """Send ``image`` as ``name:tag`` (blobs it already has are not sent again); returns the digest."""
        for digest, data in image.blobs.items():
            if not self.has_blob(name, digest):
                self.put_blob(name, digest, data)
        status, headers, body = self._request(
            "PUT", f"/v2/{name}/manifests/{tag}", image.manifest, {"Content-Type": MANIFEST_TYPE}
        )
        if status != 201:
            raise SandboxError(f"the registry refused the manifest of {name}:{tag}: HTTP {status} {body[:200]!r}")
        return headers.get("Docker-Content-Digest", image.digest)
