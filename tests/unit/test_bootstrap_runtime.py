"""The node bootstrap's container runtime: chosen per OS exactly as ``validate`` chooses it
(cluster_tools.model.nodes.container_runtimes), apptainer installed only from its release package once its sha256
is the one pinned, docker's group given to the login user, the image imported once for enroot under a name
enroot 3.4 reads.

bootstrap/on-node-configured.sh runs here with the stand-ins of test_bootstrap.py; what cannot be had here:
- the release package cannot be downloaded (no network): curl "downloads" it from a local folder laid out like
  github.com's URL, and the package managers "install" a local .deb/.rpm by putting the apptainer stand-in on PATH;
- enroot is not installed here: its stand-in records its calls and writes the URI it was given into the output;
- uname, id and usermod are stand-ins, so the machine's architecture and users do not matter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cluster_tools.model.nodes.container_runtimes import RUNTIMES_BY_OS, default_runtime, resolve_runtime
from tests.unit.test_bootstrap import RECORD, STANDINS, Node, ok, write_exe

VERSION = "1.4.5"
RELEASES = Path("github.com/apptainer/apptainer/releases/download") / f"v{VERSION}"
PACKAGE = {"ubuntu2404": f"apptainer_{VERSION}_amd64.deb", "rocky9": f"apptainer-{VERSION}-1.x86_64.rpm"}
BYTES = b"not really a package\n"
SHA = hashlib.sha256(BYTES).hexdigest()
PIN = ("--runtime", "apptainer", "--apptainer-version", VERSION, "--apptainer-sha256", SHA)
# test_bootstrap.py's names for os-release files, and ParallelCluster's for the same OS.
OS_NAMES = {
    "al2023": "alinux2023",
    "ubuntu2204": "ubuntu2204",
    "ubuntu2404": "ubuntu2404",
    "rhel8": "rhel8",
    "rhel9": "rhel9",
    "rocky8": "rocky8",
    "rocky9": "rocky9",
}
# A local package given to dnf or apt-get "installs" the apptainer stand-in; the rest is as in test_bootstrap.py.
INSTALL_LOCAL = """
for p in "$@"; do case $p in /*.deb | /*.rpm) cp "$CT_TEST_PKGBIN/apptainer" "$CT_TEST_BIN/apptainer";; esac; done
"""
ENROOT = (
    RECORD
    + """
[ "$1" = import ] && printf '%s\\n' "$4" > "$3"; exit 0
"""
)


def with_standins(node: Node, os_release: str = "debian12") -> Node:
    """``node`` with this file's stand-ins, playing ``os_release`` (a new Node lays test_bootstrap.py's anew)."""
    node.set_os(os_release)
    for name in ("dnf", "apt-get"):
        write_exe(node.tmp / "bin" / name, STANDINS[name].replace(RECORD, RECORD + INSTALL_LOCAL, 1))
    write_exe(node.tmp / "bin" / "uname", 'echo "${CT_TEST_ARCH:-x86_64}"\n')
    write_exe(node.tmp / "bin" / "id", "echo 1000\n")
    write_exe(node.tmp / "bin" / "usermod", RECORD)
    write_exe(node.tmp / "pkgbin" / "enroot", ENROOT)
    return node


@pytest.fixture
def node(tmp_path: Path) -> Node:
    package = tmp_path / "s3" / RELEASES
    package.mkdir(parents=True)
    for name in PACKAGE.values():
        (package / name).write_bytes(BYTES)
    return with_standins(Node(tmp_path))


def calls_by_name(node: Node) -> list[str]:
    """The calls, with the per-run download directory taken out of paths."""
    return [" ".join(Path(w).name if w.startswith(str(node.tmp)) else w for w in c.split(" ")) for c in node.calls()]


@pytest.mark.parametrize("os_release", sorted(OS_NAMES))
def test_the_default_runtime_per_os_is_the_one_validate_renders(node: Node, os_release: str):
    node.set_os(os_release)
    out = ok(node.run("--runtime", "auto", "--dry-run"))
    assert f" runtime={default_runtime(OS_NAMES[os_release])} " in out


@pytest.mark.parametrize("os_release", sorted(OS_NAMES))
@pytest.mark.parametrize("runtime", ["enroot", "docker", "apptainer"])
def test_a_runtime_the_os_cannot_have_is_refused_on_the_node_as_validate_refuses_it(node: Node, os_release, runtime):
    node.set_os(os_release)
    result = node.run("--runtime", runtime, "--dry-run")
    try:
        resolve_runtime(OS_NAMES[os_release], runtime)
    except ValueError:
        allowed = " or ".join(RUNTIMES_BY_OS[OS_NAMES[os_release]])
        assert result.returncode == 1 and f"runtime {runtime} cannot run on" in result.stdout
        assert f"use {allowed} (see cluster_tools/model/nodes/container_runtimes.py)" in result.stdout
        assert not node.calls()
    else:
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "os_release, expected",
    [
        ("ubuntu2404", ["apt-get update -q", f"apt-get install -y --no-install-recommends {PACKAGE['ubuntu2404']}"]),
        ("rocky9", ["dnf install -y epel-release", f"dnf install -y {PACKAGE['rocky9']}"]),
    ],
)
def test_apptainer_is_installed_from_its_release_package_once_its_sha256_is_the_pinned_one(node, os_release, expected):
    node.set_os(os_release)
    out = ok(node.run(*PIN))
    url = f"https://{RELEASES}/{PACKAGE[os_release]}"
    assert calls_by_name(node) == [f"curl -fsSL --retry 3 --retry-delay 2 -o {PACKAGE[os_release]} {url}", *expected]
    assert f"sha256 verified: {SHA}" in out and (node.tmp / "bin" / "apptainer").exists()


def test_a_release_package_with_another_sha256_is_never_installed(node: Node):
    node.set_os("ubuntu2404")
    result = node.run(*PIN[:-1], "0" * 64)
    assert result.returncode == 1
    assert (
        f"sha256 mismatch for https://{RELEASES}/{PACKAGE['ubuntu2404']}: expected {'0' * 64}, got {SHA}"
        in result.stdout
    )
    assert "step runtime-apptainer failed (exit 1)" in result.stdout
    assert [c for c in node.calls() if not c.startswith("curl ")] == [], "no package manager was called"
    assert not (node.tmp / "bin" / "apptainer").exists()
    assert not list((node.tmp / "state").glob("tmp.*")), "the download is removed"


def test_apptainer_without_a_pin_downloads_nothing(node: Node):
    node.set_os("ubuntu2404")
    result = node.run("--runtime", "apptainer")
    assert result.returncode == 1 and "nothing is downloaded unverified" in result.stdout
    assert node.calls() == []


def test_apptainer_on_arm64_is_refused_before_any_download(node: Node):
    node.set_os("ubuntu2404")
    result = node.run(*PIN, env={"CT_TEST_ARCH": "aarch64"})
    assert result.returncode == 1 and "x86_64 only, not aarch64: use enroot or docker" in result.stdout
    assert node.calls() == []


@pytest.mark.parametrize(
    "args, bad",
    [
        (("--apptainer-version", "1.4"), "--apptainer-version must be a release"),
        (("--apptainer-version", "1.4.5;id", "--apptainer-sha256", SHA), "--apptainer-version must be a release"),
        (("--apptainer-version", VERSION, "--apptainer-sha256", "abc"), "--apptainer-sha256 must be 64 hex digits"),
    ],
)
def test_bad_apptainer_pins_exit_2(node: Node, args, bad):
    result = node.run("--runtime", "apptainer", *args)
    assert result.returncode == 2 and bad in result.stderr and not node.calls()


@pytest.mark.parametrize(
    "os_release, cfn_user, user",
    [("al2023", None, "ec2-user"), ("ubuntu2404", None, "ubuntu"), ("ubuntu2404", "alice", "alice")],
)
def test_docker_adds_the_login_user_to_the_docker_group(node: Node, os_release, cfn_user, user):
    node.set_os(os_release)
    if cfn_user:
        with open(node.tmp / "cfnconfig-state", "a") as cfn:
            cfn.write(f"cfn_cluster_user={cfn_user}\n")
    ok(node.run("--runtime", "docker"))
    assert node.calls()[-1] == f"usermod -aG docker {user}"


def test_enroot_imports_the_image_once_under_the_name_enroot_reads_and_tells_the_wrapper(node: Node):
    node.set_os("al2023")
    node.install("enroot")
    image = "ghcr.io/acme/seg:1.0@sha256:" + "e" * 64
    ok(node.run("--runtime", "auto", "--image", image))
    sqsh = next((node.shared / "images").glob("*.sqsh"))
    uri = "docker://ghcr.io#acme/seg:sha256:" + "e" * 64  # enroot 3.4's form; a digest where a tag goes
    assert node.calls() == [f"enroot import -o {sqsh}.partial {uri}"]
    assert sqsh.read_text() == uri + "\n"
    env = (node.shared / "bootstrap.env").read_text()
    assert "CT_RUNTIME=enroot\n" in env and f"CT_IMAGE_FILE={sqsh}\n" in env
    compute = with_standins(Node(node.tmp, role="ComputeFleet", state_name="compute-state"), "al2023")
    node.clear_calls()
    out = ok(compute.run("--runtime", "enroot", "--image", image))
    assert "check runtime-enroot: ok" in out and "check image: ok" in out and node.calls() == []


def test_without_enroot_on_the_ami_the_node_says_so(node: Node):
    node.set_os("al2023")
    result = node.run("--runtime", "enroot")
    assert (
        result.returncode == 1 and "enroot is not on PATH: use a ParallelCluster AMI that ships enroot" in result.stdout
    )


def test_a_compute_node_installs_a_missing_runtime_package_itself(node: Node):
    """The runtime is a node-local package: a compute node whose AMI lacks it installs it itself."""
    node.set_os("ubuntu2404")
    ok(node.run(*PIN))
    (node.tmp / "bin" / "apptainer").unlink()
    node.clear_calls()
    compute = with_standins(Node(node.tmp, role="ComputeFleet", state_name="compute-state"), "ubuntu2404")
    ok(compute.run(*PIN))
    assert [c.split(" ")[0] for c in node.calls()] == ["curl", "apt-get", "apt-get"]
    assert (node.tmp / "bin" / "apptainer").exists()
