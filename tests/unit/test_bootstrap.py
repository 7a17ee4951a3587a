"""The node bootstrap (bootstrap/on-node-configured.sh), driven as bash in a temporary directory.

The real script runs here (this machine is Debian 12, accepted as a test target), with small stand-in
executables first on PATH for every command that touches the system: dnf, apt-get, aws, curl,
apptainer, docker, systemctl, logger. Each stand-in records its arguments into ``calls.log``.

What cannot be had here is replaced by a stand-in that the test builds and says so:
- the real Miniforge installer cannot be fetched here (no internet), so the "installer" is a tiny shell
  script that accepts ``-b [-u] -p PREFIX`` and creates ``$PREFIX/bin/conda`` (itself a stand-in that
  records its arguments and creates the environment directory);
- apptainer is not installable here, so ``apptainer pull OUT SRC`` writes SRC into OUT;
- S3 is a local folder: ``aws s3 cp s3://BUCKET/KEY DEST`` copies ``fake-s3/BUCKET/KEY``.
OS detection and node role read fake files through CT_OS_RELEASE and CT_CFNCONFIG; markers go to
CT_STATE_DIR.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bootstrap" / "on-node-configured.sh"
PREFIX = "s3://bucket/clustertools/demo/bootstrap/"

OS_RELEASES = {
    "al2023": ('ID="amzn"\nVERSION_ID="2023"\n', "amzn 2023", "dnf"),
    "ubuntu2204": ('ID=ubuntu\nVERSION_ID="22.04"\n', "ubuntu 22.04", "apt-get"),
    "ubuntu2404": ('ID=ubuntu\nVERSION_ID="24.04"\n', "ubuntu 24.04", "apt-get"),
    "rhel9": ('ID="rhel"\nVERSION_ID="9.4"\n', "rhel 9.4", "dnf"),
    "rocky9": ('ID="rocky"\nVERSION_ID="9.3"\n', "rocky 9.3", "dnf"),
    "rhel8": ('ID="rhel"\nVERSION_ID="8.10"\n', "rhel 8.10", "dnf"),
    "rocky8": ('ID="rocky"\nVERSION_ID="8.9"\n', "rocky 8.9", "dnf"),
    "debian12": ('ID=debian\nVERSION_ID="12"\n', "debian 12", "apt-get"),
}

RECORD = 'printf "%s\\n" "$(basename "$0") $*" >> "$CT_TEST_CALLS"\n'

STANDINS = {
    "logger": 'printf "%s\\n" "$*" >> "$CT_TEST_SYSLOG"\n',
    "aws": RECORD
    + """
[ "$1 $2" = "s3 cp" ] || exit 64
shift 2
[ "$1" = "--only-show-errors" ] && shift
src=${1#s3://}
[ -f "$CT_TEST_S3/$src" ] ||
  { echo "fatal error: An error occurred (404) when calling the HeadObject operation" >&2; exit 1; }
cp "$CT_TEST_S3/$src" "$2"
""",
    "curl": RECORD
    + """
out=""
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2;; *) url=$1; shift;; esac; done
path=${url#https://}; path=${path%%\\?*}
cp "$CT_TEST_S3/$path" "$out"
""",
    "apptainer": RECORD
    + """
[ "$1" = pull ] || exit 0
[ -z "${CT_TEST_PULL_FAILS:-}" ] || { echo "FATAL: pull refused" >&2; exit 3; }
shift; [ "$1" = --force ] && shift
printf '%s\\n' "$2" > "$1"
""",
    "docker": RECORD
    + """
if [ "$1" = save ]; then printf 'tar\\n' > "$3"; fi
""",
    "systemctl": RECORD,
    # The package managers "install" apptainer/docker by copying the stand-in from pkgbin/ onto PATH.
    "dnf": RECORD
    + """
for p in "$@"; do [ -f "$CT_TEST_PKGBIN/$p" ] && cp "$CT_TEST_PKGBIN/$p" "$CT_TEST_BIN/$p"; done; exit 0
""",
    "apt-get": RECORD
    + """
for p in "$@"; do
  case $p in docker.io) p=docker;; esac
  [ -f "$CT_TEST_PKGBIN/$p" ] && cp "$CT_TEST_PKGBIN/$p" "$CT_TEST_BIN/$p"
done
exit 0
""",
}

# The stand-in Miniforge installer: the real one cannot be fetched here.
INSTALLER = """#!/bin/sh
prefix=""
while [ $# -gt 0 ]; do case $1 in -p) prefix=$2; shift 2;; *) shift;; esac; done
mkdir -p "$prefix/bin"
cat > "$prefix/bin/conda" <<'EOF'
#!/bin/sh
printf '%s\\n' "conda $*" >> "$CT_TEST_CALLS"
while [ $# -gt 0 ]; do case $1 in -p) mkdir -p "$2/conda-meta"; shift 2;; *) shift;; esac; done
EOF
chmod +x "$prefix/bin/conda"
echo "installed into $prefix"
"""
INSTALLER_SHA = hashlib.sha256(INSTALLER.encode()).hexdigest()
ENV_YML = "name: demo\ndependencies:\n  - python=3.11\n"


def env_dir(text: str) -> str:
    """Where the head node solves an environment file: envs/PROJECT-<12 hex of its sha256>."""
    return f"envs/demo-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def write_exe(path: Path, body: str) -> None:
    path.write_text(body if body.startswith("#!") else "#!/bin/sh\n" + body)
    path.chmod(0o755)


@dataclass
class Node:
    tmp: Path
    os_name: str = "debian12"
    role: str = "HeadNode"
    state_name: str = "state"

    def __post_init__(self) -> None:
        for d in ("bin", "pkgbin", "s3/bucket/clustertools/demo/bootstrap", "s3/mirror", "shared", "log"):
            (self.tmp / d).mkdir(parents=True, exist_ok=True)
        for name, body in STANDINS.items():
            target = "pkgbin" if name in ("apptainer", "docker") else "bin"
            write_exe(self.tmp / target / name, body)
        (self.tmp / "s3/mirror/Miniforge3.sh").write_text(INSTALLER)
        (self.tmp / "s3/bucket/clustertools/demo/bootstrap/env.yml").write_text(ENV_YML)
        self.set_os(self.os_name)
        self.set_role(self.role)

    def set_os(self, name: str) -> None:
        (self.tmp / "os-release").write_text(OS_RELEASES[name][0] if name in OS_RELEASES else name)

    def set_role(self, role: str) -> None:
        (self.tmp / f"cfnconfig-{self.state_name}").write_text(f"cfn_node_type={role}\nother=1\n")

    def install(self, name: str) -> None:
        """Put a runtime on PATH as if the AMI shipped it."""
        shutil.copy(self.tmp / "pkgbin" / name, self.tmp / "bin" / name)

    @property
    def shared(self) -> Path:
        return self.tmp / "shared" / "clustertools"

    @property
    def log_file(self) -> Path:
        return self.tmp / "log" / f"{self.state_name}.log"

    def calls(self) -> list[str]:
        path = self.tmp / "calls.log"
        return path.read_text().splitlines() if path.exists() else []

    def clear_calls(self) -> None:
        (self.tmp / "calls.log").unlink(missing_ok=True)

    def run(
        self, *args: str, env: dict[str, str] | None = None, os_release: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            "PATH": f"{self.tmp / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "CT_TEST_CALLS": str(self.tmp / "calls.log"),
            "CT_TEST_SYSLOG": str(self.tmp / "syslog.log"),
            "CT_TEST_S3": str(self.tmp / "s3"),
            "CT_TEST_BIN": str(self.tmp / "bin"),
            "CT_TEST_PKGBIN": str(self.tmp / "pkgbin"),
            "CT_CFNCONFIG": str(self.tmp / f"cfnconfig-{self.state_name}"),
            "CT_STATE_DIR": str(self.tmp / self.state_name),
            **({"CT_OS_RELEASE": str(self.tmp / "os-release")} if os_release else {}),
            **(env or {}),
        }
        # Apptainer (already on PATH, or absent on purpose) unless a test names the runtime: the runtime's own
        # choice per OS and its installs are tests/unit/test_bootstrap_runtime.py's.
        runtime = [] if any(a.startswith("--runtime") for a in args) else ["--runtime", "apptainer"]
        argv = [
            "bash",
            str(SCRIPT),
            "--project",
            "demo",
            "--cluster",
            "demo",
            "--bootstrap-prefix",
            PREFIX,
            "--shared-dir",
            str(self.tmp / "shared"),
            "--log",
            str(self.log_file),
            *runtime,
            *args,
        ]
        return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=60)


FULL = (
    "--miniforge-url",
    "s3://mirror/Miniforge3.sh",
    "--miniforge-sha256",
    INSTALLER_SHA,
    "--env-file",
    "env.yml",
    "--image",
    "docker://ghcr.io/acme/seg:1.0",
)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_shellcheck_clean():
    assert shutil.which("shellcheck"), "shellcheck is missing: dev/setup installs it"
    for script in [SCRIPT, *sorted((ROOT / "bootstrap" / "lib").glob("*.sh"))]:
        result = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("os_name", sorted(OS_RELEASES))
def test_supported_os_is_detected(node: Node, os_name: str):
    node.set_os(os_name)
    out = ok(node.run("--runtime", "none"))
    assert f"os={OS_RELEASES[os_name][1]} " in out


# Every OS a ParallelCluster of the pinned range (>=3.10) offers, as its /etc/os-release says.
PCLUSTER_OS_RELEASES = {
    "alinux2": 'ID="amzn"\nVERSION_ID="2"\n',
    "alinux2023": 'ID="amzn"\nVERSION_ID="2023"\n',
    "centos7": 'ID="centos"\nVERSION_ID="7"\n',
    "ubuntu2004": 'ID=ubuntu\nVERSION_ID="20.04"\n',
    "ubuntu2204": 'ID=ubuntu\nVERSION_ID="22.04"\n',
    "ubuntu2404": 'ID=ubuntu\nVERSION_ID="24.04"\n',
    "rhel8": 'ID="rhel"\nVERSION_ID="8.10"\n',
    "rocky8": 'ID="rocky"\nVERSION_ID="8.10"\n',
    "rhel9": 'ID="rhel"\nVERSION_ID="9.4"\n',
    "rocky9": 'ID="rocky"\nVERSION_ID="9.3"\n',
}


@pytest.mark.parametrize("os_name", sorted(PCLUSTER_OS_RELEASES))
def test_the_script_sets_up_exactly_the_oses_validate_allows(node: Node, os_name: str):
    from cluster_tools.model.aws.cluster_spec_checks import BOOTSTRAP_OSES
    from cluster_tools.model.aws.pcluster_support import supported_oses

    new_oses = set(supported_oses()) - set(PCLUSTER_OS_RELEASES)
    assert not new_oses, f"a new ParallelCluster OS {new_oses}: decide whether the script sets it up"
    node.set_os(PCLUSTER_OS_RELEASES[os_name])
    result = node.run("--runtime", "none")
    assert (result.returncode == 0) == (os_name in BOOTSTRAP_OSES), result.stdout


@pytest.mark.parametrize(
    "text, shown",
    [
        ('ID=centos\nVERSION_ID="7"\n', "ID=centos VERSION_ID=7"),
        ('ID=ubuntu\nVERSION_ID="20.04"\n', "ID=ubuntu VERSION_ID=20.04"),
        ('ID="amzn"\nVERSION_ID="2"\n', "ID=amzn VERSION_ID=2"),
    ],
)
def test_unknown_os_is_refused_naming_what_was_found(node: Node, text: str, shown: str):
    node.set_os(text)
    result = node.run("--runtime", "none")
    assert result.returncode == 1
    assert f"unsupported operating system: {shown}" in result.stdout
    assert not node.calls()


def test_this_machine_real_os_release_in_dry_run(node: Node):
    """The sandbox node (Debian 12) is a supported test target: its real /etc/os-release is accepted."""
    out = ok(node.run(*FULL, "--dry-run", os_release=False))
    assert "dry run: nothing is changed" in out
    assert "step miniforge: would run: install_miniforge s3://mirror/Miniforge3.sh" in out
    assert "step image: would run: pull_apptainer" in out
    assert not node.calls(), "a dry run calls no system command"
    assert not (node.tmp / "state").exists() and not node.log_file.exists() and not node.shared.exists()


def test_apptainer_already_present_installs_nothing(node: Node):
    node.install("apptainer")
    out = ok(node.run())
    assert node.calls() == []
    assert "apptainer already installed" in out


def test_docker_runtime(node: Node):
    node.set_os("al2023")
    ok(node.run("--runtime", "docker", "--image", "alpine:3.19"))
    calls = node.calls()
    assert calls[:2] == ["dnf install -y docker", "systemctl enable --now docker"]
    assert "docker pull alpine:3.19" in calls
    assert any(c.startswith("docker save -o ") for c in calls)


def test_runtime_none_touches_nothing(node: Node):
    out = ok(node.run("--runtime", "none"))
    assert node.calls() == []
    assert "runtime none" in out
    assert "CT_RUNTIME=none" in (node.shared / "bootstrap.env").read_text()


def test_image_with_runtime_none_is_an_error(node: Node):
    result = node.run("--runtime", "none", "--image", "alpine")
    assert result.returncode == 1 and "needs a container runtime" in result.stdout


def test_installer_from_s3_with_wrong_sha256_is_refused(node: Node):
    node.install("apptainer")
    result = node.run("--miniforge-url", "s3://mirror/Miniforge3.sh", "--miniforge-sha256", "0" * 64)
    assert result.returncode != 0
    assert "sha256 mismatch" in result.stdout and "nothing installed" in result.stdout
    assert re.search(r"step miniforge failed \(exit 1\)", result.stdout)
    assert "aws s3 cp --only-show-errors s3://mirror/Miniforge3.sh" in node.calls()[0]
    assert not (node.shared / "miniforge3").exists()
    assert not list((node.tmp / "state").glob("tmp.*")), "the download is removed"
    assert "step miniforge failed" in node.log_file.read_text()
    assert "step miniforge failed" in (node.tmp / "syslog.log").read_text()


def test_full_head_node_run_then_second_run_is_a_no_op(node: Node):
    node.install("apptainer")
    out = ok(node.run(*FULL))
    assert (node.shared / "miniforge3/bin/conda").exists()
    assert "sha256 verified" in out
    assert (node.shared / env_dir(ENV_YML) / "conda-meta").is_dir()
    sifs = list((node.shared / "images").glob("*.sif"))
    assert len(sifs) == 1 and sifs[0].read_text().strip() == "docker://ghcr.io/acme/seg:1.0"
    calls = node.calls()
    assert any(c.startswith("conda env create -p ") for c in calls)
    assert sum(c.startswith("apptainer pull") for c in calls) == 1
    node_env = (node.shared / "bootstrap.env").read_text()
    assert f"CT_IMAGE_FILE={sifs[0]}" in node_env and f"CT_CONDA_ENV={node.shared}/{env_dir(ENV_YML)}" in node_env
    # Every log line carries a UTC timestamp; syslog gets the same messages.
    lines = [line for line in node.log_file.read_text().splitlines() if "clustertools-bootstrap[" in line]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in lines)
    assert "bootstrap finished OK (5 step(s) run)" in (node.tmp / "syslog.log").read_text()

    node.clear_calls()
    out = ok(node.run(*FULL))
    for name in ("runtime-apptainer", "miniforge", "conda-env", "image", "node-env"):
        assert f"step {name}: already done" in out
    assert not re.search(r"step \S+: start", out)
    assert "bootstrap finished OK: nothing to do (every step already done)" in out
    # Only the (read-only) fetch of the environment file to compare it: no install, solve or pull.
    assert node.calls() == [f"aws s3 cp --only-show-errors {PREFIX}env.yml {node.tmp}/state/env/env.yml"]


def test_a_changed_environment_file_is_solved_beside_the_old_one_and_bootstrap_env_points_at_it(node: Node):
    """`bootstrap refresh`: a task running in the old environment keeps it (its directory stays); new tasks read
    bootstrap.env, which now names the new one."""
    node.install("apptainer")
    ok(node.run(*FULL))
    changed = ENV_YML + "  - numpy\n"
    (node.tmp / "s3/bucket/clustertools/demo/bootstrap/env.yml").write_text(changed)
    node.clear_calls()
    out = ok(node.run(*FULL))
    assert "step conda-env: start" in out and "step miniforge: already done" in out and "step node-env: start" in out
    assert any(c.startswith(f"conda env create -p {node.shared}/{env_dir(changed)} ") for c in node.calls())
    assert (node.shared / env_dir(ENV_YML) / "conda-meta").is_dir(), "the old environment stays"
    assert f"CT_CONDA_ENV={node.shared}/{env_dir(changed)}\n" in (node.shared / "bootstrap.env").read_text()


def test_an_environment_an_interrupted_solve_left_is_solved_again_from_nothing(node: Node):
    node.install("apptainer")
    half = node.shared / env_dir(ENV_YML)
    (half / "lib").mkdir(parents=True)  # no conda-meta: conda never finished
    ok(node.run(*FULL))
    assert (half / "conda-meta").is_dir() and not (half / "lib").exists()
    assert any(c.startswith(f"conda env create -p {half} ") for c in node.calls())


def test_changed_image_reference_pulls_again_unchanged_does_not(node: Node):
    node.install("apptainer")
    ok(node.run("--image", "docker://ghcr.io/acme/seg:1.0"))
    node.clear_calls()
    out = ok(node.run("--image", "docker://ghcr.io/acme/seg:1.0"))
    assert "step image: already done" in out and not any("pull" in c for c in node.calls())
    digest = "ghcr.io/acme/seg@sha256:" + "b" * 64
    out = ok(node.run("--image", digest))
    assert "step image: start" in out and "step runtime-apptainer: already done" in out
    calls = node.calls()
    assert (
        len(calls) == 1 and calls[0].startswith("apptainer pull --force ") and calls[0].endswith(f" docker://{digest}")
    )
    assert len(list((node.shared / "images").glob("*.sif"))) == 2
    # A SIF removed from shared storage is pulled again even though the marker matches.
    for sif in (node.shared / "images").glob("*.sif"):
        sif.unlink()
    node.clear_calls()
    ok(node.run("--image", digest))
    assert len(node.calls()) == 1 and node.calls()[0].startswith("apptainer pull")


def test_failure_names_the_step_and_exits_non_zero(node: Node):
    node.install("apptainer")
    result = node.run("--image", "alpine:3.19", env={"CT_TEST_PULL_FAILS": "1"})
    assert result.returncode == 3
    assert "FATAL: pull refused" in result.stdout
    assert "step image failed (exit 3)" in result.stdout
    assert "bootstrap FAILED (exit 3)" in node.log_file.read_text()
    assert "step image failed (exit 3)" in (node.tmp / "syslog.log").read_text()
    assert not list((node.shared / "images").glob("*.sif"))
    # The next run retries the failed step (no marker was left).
    assert "step image: start" in ok(node.run("--image", "alpine:3.19"))


def test_compute_node_only_checks(node: Node):
    node.install("apptainer")
    compute = Node(node.tmp, role="ComputeFleet", state_name="compute-state")
    # Before the head node has run: the compute node fails, naming what is missing.
    result = compute.run(*FULL)
    assert result.returncode == 1
    assert "step miniforge failed (exit 1)" in result.stdout and "the head node installs Miniforge" in result.stdout
    ok(node.run(*FULL))
    node.clear_calls()
    out = ok(compute.run(*FULL))
    for name in ("miniforge", "conda-env", "image", "node-env"):
        assert f"check {name}: ok" in out
    assert node.calls() == [], "a compute node downloads, solves and pulls nothing"


def test_unknown_role_is_an_error(node: Node):
    node.set_role("LoginNode")
    result = node.run("--runtime", "none")
    assert result.returncode == 1 and "cfn_node_type='LoginNode'" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus"], "unknown argument: --bogus"),
        (["--runtime", "singularity"], "--runtime must be"),
        (["--miniforge-sha256", "xyz"], "64 hex digits"),
        (["--miniforge-url", "http://example.com/x.sh"], "https:// or s3://"),
        (["--env-file", "../secrets"], "--env-file is a name"),
        (["--miniforge-url", "s3://mirror/Miniforge3.sh"], "needs --miniforge-sha256"),
        (["--env-file", "env.yml"], "--env-file needs --miniforge-url"),
        (["--image"], "--image needs a value"),
    ],
)
def test_bad_arguments_exit_2(node: Node, args: list[str], message: str):
    result = node.run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not node.calls()


def test_equals_form_of_options(node: Node):
    out = ok(node.run("--runtime=none", "--dry-run"))
    assert "runtime=none" in out


def test_presigned_url_query_is_not_written_to_disk(node: Node):
    node.install("apptainer")
    url = "https://mirror/Miniforge3.sh?X-Amz-Credential=AKIASECRET&X-Amz-Signature=deadbeef"
    (node.tmp / "s3/mirror").mkdir(exist_ok=True)
    out = ok(node.run("--miniforge-url", url, "--miniforge-sha256", INSTALLER_SHA))
    assert node.calls()[0].startswith("curl ")
    assert "AKIASECRET" not in out
    for path in [node.log_file, node.tmp / "syslog.log", *(node.tmp / "state").rglob("*")]:
        if path.is_file():
            assert "AKIASECRET" not in path.read_text(errors="replace"), path


def test_log_file_is_not_world_writable_and_markers_hold_only_hashes(node: Node):
    node.install("apptainer")
    ok(node.run("--miniforge-url", "s3://mirror/Miniforge3.sh", "--miniforge-sha256", INSTALLER_SHA))
    assert oct(os.stat(node.log_file).st_mode & 0o777) == "0o644"
    for marker in (node.tmp / "state/steps").glob("*.done"):
        assert re.fullmatch(r"[0-9a-f]{64}\n", marker.read_text())
