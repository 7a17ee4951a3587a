"""What the sandbox needs on disk before its daemons start: programs, keys, ports, configs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cluster_tools.errors import MissingDependency, SandboxError
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.transport.local_commands import run_local

SANDBOX_CLUSTER = "sandbox"  # the name it is registered under
SANDBOX_REGION = "us-east-1"  # its S3 endpoint's, and its nodes' AWS_DEFAULT_REGION
MARKER_ENV = "CLUSTERTOOLS_SANDBOX"  # set to the sandbox's root in every process it starts, so `down` finds them
APT_PACKAGES = "slurm-wlm munge openssh-server awscli podman uidmap runc docker-registry busybox-static"
# program -> the Debian package that ships it
REQUIRED_PROGRAMS = {
    "munged": "munge",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sinfo": "slurm-client",
    "scancel": "slurm-client",
    "scontrol": "slurm-client",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    # Containers: rootless podman on the nodes (newuidmap maps a container's users), and the image registry.
    "podman": "podman",
    "newuidmap": "uidmap",
    "docker-registry": "docker-registry",
}
# Slurm's and sshd's config files take paths unquoted; a socket path must fit in sun_path (108 bytes).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+-]+$")
_MAX_SOCKET_DIR = 80  # munged's socket, "<runtime>/munge.socket" (slurmd's are under each node's /var/spool)


SYSTEM_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")  # daemons live in sbin, often not on a user's PATH
# The nodes' aws CLI: one every user can run (a pyenv's under /root is not), as a real node's /usr/bin/aws.
NODE_AWS = ("/usr/bin/aws", "/usr/local/bin/aws")
# Paths the head node's namespace lays its own files over: the sandbox's own files cannot live there.
OVERLAID = ("/etc", "/opt", "/usr/bin", "/usr/local", "/home")


def find_programs(environ: Mapping[str, str], system_dirs: tuple[str, ...] = SYSTEM_DIRS) -> dict[str, str]:
    """Absolute paths of the programs the sandbox runs; a MissingDependency names the apt-get line."""
    search = os.pathsep.join([environ.get("PATH", ""), *system_dirs])
    found, missing = {}, []
    for program, package in REQUIRED_PROGRAMS.items():
        path = shutil.which(program, path=search)
        if path:
            found[program] = path
        else:
            missing.append(f"{program} ({package})")
    node_aws = next((path for path in NODE_AWS if os.access(path, os.X_OK)), None)
    if node_aws:
        found["node-aws"] = node_aws
    else:
        missing.append("aws (awscli, for the nodes' non-root user)")
    from cluster_tools.services.sandbox.sandbox_images import find_busybox

    try:
        found["busybox"] = str(find_busybox())
    except MissingDependency:
        missing.append("a static busybox (busybox-static, for the registry's images)")
    if missing:
        sudo = "" if os.geteuid() == 0 else "sudo "
        raise MissingDependency(
            f"the sandbox needs programs that are not installed: {', '.join(missing)}",
            f"run: {sudo}apt-get install -y {APT_PACKAGES}",
        )
    try:
        import moto.server  # noqa: F401  (only to learn it is there)
    except ImportError:
        raise MissingDependency(
            "the sandbox's S3 endpoint needs moto[server], which is not installed",
            "run: pip install 'clustertools-pcluster[sandbox]' (installed with pipx: "
            "pipx install --force 'clustertools-pcluster[sandbox]'; in a checkout: dev/setup)",
        ) from None
    return found


def sandbox_paths(root: Path) -> SandboxPaths:
    """The sandbox's files under ``root``; its sockets in /tmp, one dir per user and sandbox."""
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    return SandboxPaths(root=root, runtime=Path(tempfile.gettempdir()) / f"clustertools-{os.getuid()}-{tag}")


def check_paths(paths: SandboxPaths) -> None:
    if not _SAFE_PATH.fullmatch(str(paths.root)):
        raise SandboxError(
            f"the sandbox dir {paths.root} has characters Slurm's and sshd's configs cannot hold",
            "set CLUSTERTOOLS_STATE_DIR to a plain path such as /tmp/clustertools-state",
        )
    hidden = next((top for top in OVERLAID if paths.root.is_relative_to(top)), None)
    if hidden:
        raise SandboxError(
            f"the sandbox dir {paths.root} is under {hidden}, which the sandbox's nodes see as their own",
            "set CLUSTERTOOLS_STATE_DIR to a path outside /etc, /opt, /usr and /home, e.g. /var/tmp/clustertools",
        )
    if len(str(paths.munge_socket)) > _MAX_SOCKET_DIR:
        raise SandboxError(
            f"the temp dir {paths.runtime.parent} is too deep for the sandbox's unix sockets",
            "set TMPDIR to a shorter path, e.g. /tmp",
        )


def make_dirs(paths: SandboxPaths) -> None:
    paths.runtime.mkdir(mode=0o755, exist_ok=True)
    info = os.lstat(paths.runtime)  # lstat: a symlink planted in /tmp must not redirect us
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        raise SandboxError(
            f"{paths.runtime} exists and is not yours: refusing to put sockets there",
            "remove it, or set TMPDIR to a directory of your own",
        )
    for directory, mode in (
        (paths.root, 0o755),
        (paths.etc, 0o755),
        (paths.bin, 0o755),
        (paths.node_fs, 0o755),
        (paths.keys, 0o700),
        (paths.run, 0o755),
        (paths.log, 0o755),
        (paths.runtime, 0o755),  # munged refuses a socket dir that others cannot enter
        (paths.slurm_state, 0o700),
        (paths.slurmd_spool, 0o755),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, mode)


def ensure_keys(paths: SandboxPaths, ssh_keygen: str) -> None:
    """Keys are made once and kept across down/up, so the pinned host key stays valid."""
    if not paths.munge_key.exists():
        fd = os.open(paths.munge_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(1024))
    for key, comment in (
        (paths.ssh_host_key, "clustertools-sandbox-host"),
        (paths.user_key, "clustertools-sandbox-user"),
    ):
        if not key.exists():
            made = run_local([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], timeout=30)
            if not made.ok:
                raise SandboxError(f"ssh-keygen could not make {key}: {made.last_line()}")
    paths.authorized_keys.write_text(Path(f"{paths.user_key}.pub").read_text())
    os.chmod(paths.authorized_keys, 0o600)


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (a small race with other programs is accepted)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def ensure_sshd_privsep_dir() -> None:
    """sshd run as root insists on its privilege-separation dir, which only systemd usually makes."""
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def daemon_env(paths: SandboxPaths, environ: Mapping[str, str], marker: str) -> dict[str, str]:
    """A small environment for the daemons: nothing of the caller's (no credentials) leaks in."""
    env = {key: environ[key] for key in ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ") if key in environ}
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    env["SLURM_CONF"] = str(paths.slurm_conf)
    env[marker] = str(paths.root)
    return env


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def node_path(paths: SandboxPaths, remote: str) -> Path:
    """Where a path of the sandbox's nodes (/home/ec2-user/...) is on this machine: /home and /opt are the
    head node's own layers (templates/sandbox/head-namespace.sh); other paths are the machine's."""
    for top in ("/home", "/opt"):
        if remote == top or remote.startswith(f"{top}/"):
            return paths.node_fs / remote.lstrip("/")
    return Path(remote)
