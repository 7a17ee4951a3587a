"""The sandbox's container registry and the small images it serves, built here with nothing fetched.

A real cluster pulls its image from a registry (ECR, Docker Hub, ghcr.io); the sandbox serves one on
127.0.0.1 (Debian's docker-registry, the CNCF Distribution registry) so that ``job.container`` names an image
exactly as users do: ``docker://127.0.0.1:PORT/sandbox/tools:1.0``. Its access log is the proof that an image
is pulled once per cluster. The images are made from this machine's static busybox: one layer, built by
cluster_tools.render.oci_image and pushed over the registry's HTTP API at every start (what is there is not sent
again).

``sandbox/tools``, tags 1.0 and 1.1 (the same files but their version, so a changed tag is a changed image):
busybox's applets in /bin (a shell, coreutils; no bash, as in alpine), /etc/os-release naming the image, a
working dir /work, and an entrypoint ``tool`` standing in for a packaged tool such as kwyk:
``tool segment IN OUT`` writes OUT/segmentation.txt from IN's files, ``tool fail N`` exits N, anything else is
echoed.

The nodes' podman is configured as a site would configure it for an internal registry (services/
sandbox_namespace writes these files into the head node's /etc): the registry is plain HTTP on loopback
(registries.conf ``insecure``), and the storage driver is vfs, which works on any filesystem (this machine's
/tmp may itself be an overlay).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cluster_tools.errors import MissingDependency, TransportError
from cluster_tools.render.oci_image import ImageConfig, ImageFile, OciImage, build_image
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.transport.local_commands import run_local

REPOSITORY = "sandbox/tools"
TAGS = ("1.0", "1.1")
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")

TOOL_SCRIPT = """#!/bin/sh
# The entrypoint of clustertools' sandbox image: a stand-in for a packaged tool (kwyk, fmriprep...).
case "${1:-}" in
  segment)  # segment IN OUT: a "segmentation" of IN's files
    [ -d "${2:-}" ] || { echo "tool: no input dir ${2:-}" >&2; exit 2; }
    mkdir -p "$3" && ls "$2" | sed "s/^/segmented: /" > "$3/segmentation.txt"
    echo "tool $TOOL_VERSION: segmented $(ls "$2" | wc -l) file(s) into $3" ;;
  fail) echo "tool: failing with ${2:-1} as asked" >&2; exit "${2:-1}" ;;
  *) echo "tool $TOOL_VERSION in $(pwd): $*" ;;
esac
"""


@dataclass(frozen=True)
class RegistryImage:
    reference: str  # docker://127.0.0.1:PORT/sandbox/tools:1.0
    digest: str


def registry_config(*, port: int, storage: Path) -> str:
    """docker-registry's config: loopback only, its blobs in the sandbox's directory, every request logged."""
    return (
        f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def registries_conf(port: int) -> str:
    """/etc/containers/registries.conf.d/ on the nodes: the sandbox's registry speaks plain HTTP."""
    return (
        f"# clustertools sandbox: its image registry, plain HTTP on loopback\n"
        f'[[registry]]\nlocation = "127.0.0.1:{port}"\ninsecure = true\n'
    )


def storage_conf(*, graphroot: Path, runroot: Path) -> str:
    """/etc/containers/storage.conf on the nodes: root's images (the bootstrap's pull) in the sandbox's directory."""
    return f'[storage]\ndriver = "vfs"\ngraphroot = "{graphroot}"\nrunroot = "{runroot}"\n'


def node_container_config(paths: SandboxPaths, registry_port: int) -> dict[str, str]:
    """The nodes' /etc/containers files (relative to /etc): root's image store under the sandbox's directory."""
    return {
        "containers/registries.conf.d/50-clustertools-sandbox.conf": registries_conf(registry_port),
        "containers/storage.conf": storage_conf(
            graphroot=paths.root / "containers" / "storage", runroot=paths.runtime / "containers"
        ),
        # crun refuses this machine's hybrid cgroups (v1 controllers beside a v2 mount); runc takes them.
        "containers/containers.conf": (
            '[engine]\nruntime = "runc"\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n'
        ),
    }


def find_busybox() -> Path:
    """A statically linked busybox (Debian's busybox-static): it runs in an image with no libraries."""
    for candidate in BUSYBOX_PATHS:
        path = Path(candidate)
        if path.is_file() and "not a dynamic executable" in _ldd(path):
            return path
    raise MissingDependency(
        "the sandbox's images need a statically linked busybox", "run: apt-get install -y busybox-static"
    )


def _ldd(path: Path) -> str:
    try:
        done = run_local(["ldd", str(path)], timeout=10)
    except TransportError:
        return ""
    return done.stdout + done.stderr


def image_files(busybox: bytes, applets: list[str], version: str) -> list[ImageFile]:
    files = [ImageFile(d) for d in ("bin", "etc", "root", "work", "usr", "usr/local", "usr/local/bin")]
    files.append(ImageFile("tmp", mode=0o1777))
    files.append(ImageFile("bin/busybox", busybox, 0o755))
    files += [ImageFile(f"bin/{name}", target="busybox") for name in applets if name and name != "busybox"]
    files.append(
        ImageFile(
            "etc/os-release",
            (
                f'NAME="clustertools sandbox image"\nID=clustertools-sandbox\nVERSION_ID={version}\n'
                f'PRETTY_NAME="clustertools sandbox image {REPOSITORY}:{version} (busybox)"\n'
            ).encode(),
        )
    )
    files.append(ImageFile("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
    files.append(ImageFile("etc/group", b"root:x:0:\nnogroup:x:65534:\n"))
    files.append(ImageFile("usr/local/bin/tool", TOOL_SCRIPT.encode(), 0o755))
    return files


def sandbox_images(busybox: Path) -> dict[str, OciImage]:
    """tag -> image; the same busybox gives the same digests at every start."""
    data = busybox.read_bytes()
    listing = run_local([str(busybox), "--list"], timeout=10).stdout.split()
    images = {}
    for tag in TAGS:
        config = ImageConfig(
            entrypoint=("/usr/local/bin/tool",),
            workdir="/work",
            env=("PATH=/usr/local/bin:/usr/bin:/bin", f"TOOL_VERSION={tag}"),
            labels={
                "org.opencontainers.image.title": "clustertools sandbox tools",
                "org.opencontainers.image.version": tag,
            },
        )
        images[tag] = build_image(image_files(data, listing, tag), config)
    return images


def publish(registry_url: str, busybox: Path) -> list[RegistryImage]:
    """Push the sandbox's images to its registry; returns their references and digests."""
    from cluster_tools.transport.registry import Registry

    registry = Registry(registry_url)
    host = registry_url.removeprefix("http://")
    return [
        RegistryImage(f"docker://{host}/{REPOSITORY}:{tag}", registry.push(REPOSITORY, tag, image))
        for tag, image in sandbox_images(busybox).items()
    ]
