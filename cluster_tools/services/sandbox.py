"""The local sandbox: a real, small Slurm cluster on this machine, reached only over SSH.

munged + slurmctld + slurmd (Debian's slurm-wlm), an OpenSSH sshd on 127.0.0.1 with its own keys,
and an S3 endpoint (moto server) on 127.0.0.1. It registers the cluster ``sandbox`` with the same
provider as any existing Slurm cluster reached over SSH.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from cluster_tools.clusters import ClusterRecord, forget_cluster, save_cluster
from cluster_tools.errors import SandboxError
from cluster_tools.render.sandbox import SandboxPaths, SandboxSpec, render_slurm_conf, render_sshd_config
from cluster_tools.services import sandbox_files as files
from cluster_tools.slurm.node_info import parse_sinfo_node_states, parse_slurmd_c
from cluster_tools.state import StateDir, write_private_json
from cluster_tools.transport import local_processes as procs

SANDBOX_CLUSTER = "sandbox"
SANDBOX_REGION = "us-east-1"
DEFAULT_BUCKET = "clustertools-sandbox"
MARKER_ENV = "CLUSTERTOOLS_SANDBOX"
START_ORDER = ("munged", "slurmctld", "slurmd", "sshd", "s3")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SandboxOptions:
    max_array_size: int = 1001
    max_job_count: int = 100_000
    min_job_age: int = 10
    buckets: tuple[str, ...] = (DEFAULT_BUCKET,)


@dataclass(frozen=True)
class Component:
    name: str
    pid: int | None
    running: bool
    address: str


@dataclass(frozen=True)
class SandboxStatus:
    root: Path
    running: bool
    already_running: bool = False
    components: tuple[Component, ...] = ()
    cluster: str = SANDBOX_CLUSTER
    partition: str = "compute"
    ssh: str = ""
    s3_endpoint_url: str = ""
    buckets: tuple[str, ...] = ()
    options: dict[str, int] = field(default_factory=dict)
    started_at: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "running": self.running,
            "already_running": self.already_running,
            "root": str(self.root),
            "partition": self.partition,
            "ssh": self.ssh,
            "s3_endpoint_url": self.s3_endpoint_url,
            "buckets": list(self.buckets),
            "options": self.options,
            "started_at": self.started_at,
            "components": [c.__dict__ for c in self.components],
        }


def sandbox_status(state: StateDir) -> SandboxStatus:
    paths = files.sandbox_paths(state.sandbox)
    saved = _load_state(paths)
    if not saved or not saved.get("processes"):
        return SandboxStatus(root=paths.root, running=False)
    records = {p["name"]: procs.ProcessRecord.from_json(p) for p in saved["processes"]}
    ports = saved["ports"]
    where = {
        "munged": f"unix:{paths.munge_socket}",
        "slurmctld": f"127.0.0.1:{ports['slurmctld']}",
        "slurmd": f"127.0.0.1:{ports['slurmd']} (node localhost)",
        "sshd": f"127.0.0.1:{ports['ssh']}",
        "s3": f"http://127.0.0.1:{ports['s3']}",
    }
    components = tuple(
        Component(name, records[name].pid if name in records else None,
                  name in records and procs.is_running(records[name]), where[name])
        for name in START_ORDER
    )
    return SandboxStatus(
        root=paths.root,
        running=all(c.running for c in components),
        components=components,
        ssh=f"{saved['user']}@127.0.0.1:{ports['ssh']}",
        s3_endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        buckets=tuple(saved.get("buckets", ())),
        options=saved.get("options", {}),
        started_at=saved.get("started_at", ""),
    )


def sandbox_up(state: StateDir, options: SandboxOptions, *, environ: Mapping[str, str], progress: Progress) -> SandboxStatus:
    """Start the sandbox, or report the running one. Nothing is left half-started on failure."""
    paths = files.sandbox_paths(state.sandbox)
    current = sandbox_status(state)
    if current.running:
        return SandboxStatus(**{**current.__dict__, "already_running": True})
    if any(c.running for c in current.components):
        progress("a previous sandbox is partly running: stopping what is left of it")
        sandbox_down(state, progress=progress)

    programs = files.find_programs(environ)
    files.check_paths(paths)
    files.make_dirs(paths)
    files.ensure_keys(paths, programs["ssh-keygen"])
    env = files.daemon_env(paths, environ, MARKER_ENV)
    hardware = parse_slurmd_c(_run([programs["slurmd"], "-C"], env).stdout)
    slurmctld_port, slurmd_port, ssh_port, s3_port = files.free_ports(4)
    user = pwd.getpwuid(os.getuid()).pw_name
    s3_url = f"http://127.0.0.1:{s3_port}"
    spec = SandboxSpec(
        paths=paths, user=user, cpus=hardware.cpus, real_memory_mb=hardware.real_memory_mb,
        slurmctld_port=slurmctld_port, slurmd_port=slurmd_port, ssh_port=ssh_port,
        max_array_size=options.max_array_size, max_job_count=options.max_job_count,
        min_job_age=options.min_job_age, node_env=_node_env(paths, s3_url),
    )
    paths.slurm_conf.write_text(render_slurm_conf(spec))
    paths.sshd_config.write_text(render_sshd_config(spec))
    files.ensure_sshd_privsep_dir()

    started: list[procs.ProcessRecord] = []
    saved = {
        "user": user,
        "ports": {"slurmctld": slurmctld_port, "slurmd": slurmd_port, "ssh": ssh_port, "s3": s3_port},
        "options": {"max_array_size": options.max_array_size, "max_job_count": options.max_job_count,
                    "min_job_age": options.min_job_age},
        "buckets": list(options.buckets),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "processes": [],
    }

    def start(name: str, argv: list[str]) -> procs.ProcessRecord:
        record = procs.spawn(name, argv, env=env, log_path=paths.log / f"{name}.out", cwd=paths.root)
        started.append(record)
        saved["processes"] = [r.to_json() for r in started]  # so `down` finds it even if up dies now
        write_private_json(paths.state_file, saved)
        return record

    try:
        progress("starting munged")
        munged = start("munged", [
            programs["munged"], "-F", f"--socket={paths.munge_socket}", f"--key-file={paths.munge_key}",
            f"--pid-file={paths.run}/munged.pid", f"--log-file={paths.log}/munged.log",
            f"--seed-file={paths.keys}/munge.seed",
        ])
        _wait("munged", munged, paths.log / "munged.out", 10, paths.munge_socket.exists)
        progress("starting slurmctld and slurmd")
        ctld = start("slurmctld", [programs["slurmctld"], "-D"])
        slurmd = start("slurmd", [programs["slurmd"], "-D", "-N", spec.node_name])
        _wait("slurmctld", ctld, paths.log / "slurmctld.log", 30,
              lambda: _node_state(programs["sinfo"], env, spec.node_name) is not None)
        _wait("slurmd", slurmd, paths.log / "slurmd.log", 30,
              lambda: (_node_state(programs["sinfo"], env, spec.node_name) or "").startswith(("idle", "mix", "alloc")))
        progress("starting sshd")
        sshd = start("sshd", [programs["sshd"], "-D", "-f", str(paths.sshd_config), "-E", str(paths.log / "sshd.log")])
        _wait("sshd", sshd, paths.log / "sshd.log", 10, lambda: _port_open(ssh_port))
        progress("starting the S3 endpoint")
        s3 = start("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)])
        _wait("s3", s3, paths.log / "s3.out", 30, lambda: _http_ok(s3_url))
        _create_buckets(s3_url, options.buckets)
        record = _register(state, paths, user, ssh_port, s3_url)
        progress("checking the head node over SSH")
        _check_over_ssh(record)
    except BaseException:
        procs.stop(reversed(started))
        saved["processes"] = []
        write_private_json(paths.state_file, saved)
        raise
    return sandbox_status(state)


def sandbox_down(state: StateDir, *, progress: Progress, purge: bool = False) -> list[str]:
    """Stop exactly the sandbox's processes (and what they left behind). Returns what was stopped."""
    paths = files.sandbox_paths(state.sandbox)
    saved = _load_state(paths)
    stopped: list[str] = []
    if saved and saved.get("processes"):
        records = [procs.ProcessRecord.from_json(p) for p in saved["processes"]]
        by_name = {r.name: r for r in records}
        if "slurmctld" in by_name and procs.is_running(by_name["slurmctld"]):
            progress("cancelling the sandbox's jobs")
            _cancel_all_jobs(paths, saved["user"])
        alive = [r for r in reversed(records) if procs.is_running(r)]
        progress(f"stopping {', '.join(r.name for r in alive) or 'nothing (already stopped)'}")
        left = procs.stop(alive)
        stopped = [r.name for r in alive if r not in left]
        saved["processes"] = [r.to_json() for r in left]
        write_private_json(paths.state_file, saved)
        if left:
            raise SandboxError(f"could not stop {', '.join(f'{r.name} (pid {r.pid})' for r in left)}",
                               "stop them by hand with kill -9")
    strays = procs.find_marked((MARKER_ENV, str(paths.root)))
    if strays:
        progress(f"stopping {len(strays)} leftover job process(es)")
        procs.kill_pids(strays)
        stopped.append(f"{len(strays)} leftover process(es)")
    if purge:
        forget_cluster(state, SANDBOX_CLUSTER)
        shutil.rmtree(paths.root, ignore_errors=True)
        shutil.rmtree(paths.runtime, ignore_errors=True)
    return stopped


def _node_env(paths: SandboxPaths, s3_url: str) -> dict[str, str]:
    """The environment a sandbox node gives every SSH session and job (like an AMI + IAM role would)."""
    from cluster_tools.transport.s3 import SANDBOX_CREDENTIALS

    key, secret = SANDBOX_CREDENTIALS
    return {
        "SLURM_CONF": str(paths.slurm_conf),
        MARKER_ENV: str(paths.root),
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": SANDBOX_REGION,
        # The node has the same Python as the tool, as a bootstrap would install one on a real node.
        "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    }


def _register(state: StateDir, paths: SandboxPaths, user: str, ssh_port: int, s3_url: str) -> ClusterRecord:
    """Pin the host key we generated (no trust on first use needed) and record the cluster."""
    known_hosts = state.known_hosts(SANDBOX_CLUSTER)
    algo, blob = Path(f"{paths.ssh_host_key}.pub").read_text().split()[:2]
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known_hosts.write_text(f"[127.0.0.1]:{ssh_port} {algo} {blob}\n")
    record = ClusterRecord(
        name=SANDBOX_CLUSTER, provider="ssh", host="127.0.0.1", port=ssh_port, user=user,
        identity_file=paths.user_key, known_hosts=known_hosts, sandbox=True,
        s3_endpoint_url=s3_url, region=SANDBOX_REGION,
    )
    save_cluster(state, record)
    return record


def _check_over_ssh(record: ClusterRecord) -> None:
    from cluster_tools.services.remote import connect

    with connect(record) as conn:
        conn.run(["sinfo", "-h", "-o", "%P"], timeout=15).check()


def _create_buckets(s3_url: str, buckets: tuple[str, ...]) -> None:
    from cluster_tools.transport.s3 import S3Target, ensure_bucket, make_s3_client

    client = make_s3_client(S3Target(region=SANDBOX_REGION, endpoint_url=s3_url, sandbox=True))
    for bucket in dict.fromkeys(buckets):
        ensure_bucket(client, bucket, SANDBOX_REGION)


def _cancel_all_jobs(paths: SandboxPaths, user: str) -> None:
    env = {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    try:
        subprocess.run(["scancel", "-u", user], env=env, capture_output=True, timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and not out.stdout.strip():
                return
            time.sleep(0.2)
    except (OSError, subprocess.TimeoutExpired):
        pass  # stopping the daemons and the sweep below still end every process


def _node_state(sinfo: str, env: Mapping[str, str], node: str) -> str | None:
    try:
        out = subprocess.run([sinfo, "-h", "-N", "-o", "%N|%T"], env=dict(env), capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None
    return parse_sinfo_node_states(out.stdout).get(node) if out.returncode == 0 else None


def _wait(name: str, record: procs.ProcessRecord, log: Path, timeout: float, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.is_running(record):
            raise SandboxError(f"{name} exited while starting: {files.tail(log)}", f"see {log}")
        if ready():
            return
        time.sleep(0.1)
    raise SandboxError(f"{name} did not become ready within {timeout:g} s: {files.tail(log)}", f"see {log}")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, env=dict(env), capture_output=True, text=True, timeout=30, check=True)
    except subprocess.CalledProcessError as exc:
        raise SandboxError(f"{' '.join(argv)} failed: {exc.stderr.strip()}") from None
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{' '.join(argv)} did not finish within 30 s") from None


def _load_state(paths: SandboxPaths) -> dict | None:
    try:
        return json.loads(paths.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
