"""The local sandbox: a real, small Slurm cluster on this machine, laid out as ParallelCluster lays one out.

munged, and in the head node's own mount namespace (templates/sandbox/head-namespace.sh) slurmctld and
an OpenSSH sshd on 127.0.0.1 that lets in only the OS's login user (ec2-user, ubuntu...), not root; Slurm
under /opt/slurm, on PATH only through /etc/profile.d; several compute nodes, each a slurmd with its own
hostname and cgroups, booted and stopped by Slurm's power saving (services/sandbox/sandbox_nodes.py); and an S3
endpoint (moto server) on 127.0.0.1. It registers the cluster ``sandbox`` with the same provider as any
existing Slurm cluster reached over SSH. It needs root, as a real node's daemons do.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cluster_tools.errors import SandboxError, TransportError
from cluster_tools.model.aws.console_host_keys import sha256_fingerprint
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.services.sandbox import sandbox_daemons as daemons
from cluster_tools.services.sandbox import sandbox_files as files
from cluster_tools.services.sandbox import sandbox_images, sandbox_s3
from cluster_tools.services.sandbox import sandbox_nodes as nodes
from cluster_tools.services.sandbox.sandbox_files import MARKER_ENV, SANDBOX_CLUSTER, SANDBOX_REGION
from cluster_tools.services.sandbox.sandbox_first_start import lay_out
from cluster_tools.services.sandbox.sandbox_options import SandboxOptions
from cluster_tools.services.sandbox.sandbox_queue import cancel_all_jobs
from cluster_tools.slurm.node_info import SINFO_NODES_FORMAT, NodeStatus, parse_sinfo_nodes
from cluster_tools.store.cluster_store import forget_cluster, save_cluster
from cluster_tools.store.state_dir import StateDir, write_private_json
from cluster_tools.transport import local_processes as procs
from cluster_tools.transport.local_commands import run_local

START_ORDER = daemons.START_ORDER


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
    os_name: str = ""
    ssh: str = ""
    s3_endpoint_url: str = ""
    registry: str = ""  # 127.0.0.1:PORT: job.container names its images docker://127.0.0.1:PORT/sandbox/tools:1.0
    images: tuple[dict, ...] = ()  # {"reference", "digest"} of each image it serves
    buckets: tuple[str, ...] = ()
    options: dict[str, int] = field(default_factory=dict)
    started_at: str = ""
    restarted: tuple[str, ...] = ()  # the daemons `up` restarted while the others kept running
    nodes: tuple[NodeStatus, ...] = ()  # as sinfo shows them, power state included

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "running": self.running,
            "already_running": self.already_running,
            "root": str(self.root),
            "partition": self.partition,
            "os": self.os_name,
            "ssh": self.ssh,
            "s3_endpoint_url": self.s3_endpoint_url,
            "registry": self.registry,
            "images": list(self.images),
            "buckets": list(self.buckets),
            "options": self.options,
            "started_at": self.started_at,
            "restarted": list(self.restarted),
            "nodes": [
                {
                    "name": n.name,
                    "state": n.state,
                    "flags": list(n.flags),
                    "cpus": n.cpus,
                    "memory_mb": n.memory_mb,
                    "partition": n.partition,
                    "reason": n.reason,
                }
                for n in self.nodes
            ],
            "components": [c.__dict__ for c in self.components],
        }


def sandbox_status(state: StateDir, *, with_nodes: bool = False) -> SandboxStatus:
    """The sandbox's daemons (from their PIDs); with ``with_nodes``, also its nodes as sinfo shows them
    (one sinfo call: only `sandbox status` and `sandbox interrupt` need them)."""
    paths = files.sandbox_paths(state.sandbox)
    saved = _load_state(paths)
    if not saved or not saved.get("processes"):
        return SandboxStatus(root=paths.root, running=False)
    records = {p["name"]: procs.ProcessRecord.from_json(p) for p in saved["processes"]}
    ports = saved["ports"]
    where = {
        "munged": f"unix:{paths.munge_socket}",
        "head": f"{paths.node_fs} (mount namespace)",
        "slurmctld": f"127.0.0.1:{ports['slurmctld']}",
        "sshd": f"127.0.0.1:{ports['ssh']}",
        "s3": f"http://127.0.0.1:{ports['s3']}",
        "registry": f"127.0.0.1:{ports.get('registry', '?')}",
    }
    components = tuple(
        Component(
            name,
            records[name].pid if name in records else None,
            name in records and procs.is_running(records[name]),
            where[name],
        )
        for name in START_ORDER
    )
    ctld = next((c for c in components if c.name == "slurmctld"), None)
    return SandboxStatus(
        root=paths.root,
        running=all(c.running for c in components),
        nodes=_nodes(paths) if with_nodes and ctld is not None and ctld.running else (),
        components=components,
        ssh=f"{saved['user']}@127.0.0.1:{ports['ssh']}",
        os_name=saved.get("os", ""),
        partition=(saved.get("nodes") or [{"queue": "compute"}])[0]["queue"],
        s3_endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        registry=f"127.0.0.1:{ports['registry']}" if "registry" in ports else "",
        images=tuple(saved.get("images", ())),
        buckets=tuple(saved.get("buckets", ())),
        options=saved.get("options", {}),
        started_at=saved.get("started_at", ""),
    )


def _nodes(paths: SandboxPaths) -> tuple[NodeStatus, ...]:
    """The nodes as sinfo shows them (power states included); none when slurmctld does not answer."""
    env = nodes.admin_env(paths)
    try:
        listing = run_local(["sinfo", "-h", "-N", "-o", SINFO_NODES_FORMAT], env=env, timeout=10)
    except TransportError:
        return ()
    return tuple(parse_sinfo_nodes(listing.stdout)) if listing.ok else ()


def sandbox_up(
    state: StateDir, options: SandboxOptions, *, environ: Mapping[str, str], progress: Progress
) -> SandboxStatus:
    """Start what of the sandbox is not running, on the ports it had; report the running one.

    A daemon that died is restarted alone: the queue, the S3 objects and the ports stay as they were; a
    static node that is gone boots again (as clustermgtd replaces one). Nothing is ever cancelled here.
    What this call started is stopped again if it fails.
    """
    paths = files.sandbox_paths(state.sandbox)
    current = sandbox_status(state)
    if current.running:
        return _refresh_running(state, paths, current, progress)
    _require_root()
    alive = tuple(c.name for c in current.components if c.running)
    dead = tuple(name for name in START_ORDER if name not in alive)
    ctx, saved = _prepare(paths, options, environ, alive, dead, progress)
    _start_daemons(state, ctx, saved, alive, dead, progress)
    return replace(sandbox_status(state), restarted=dead if alive else ())


def _refresh_running(state: StateDir, paths: SandboxPaths, current: SandboxStatus, progress: Progress) -> SandboxStatus:
    """A running sandbox: its own key pinned again (in case the cluster's known_hosts lost it) and its static
    nodes booted."""
    saved = _load_state(paths) or {}
    _register(state, paths, saved["user"], saved["ports"]["ssh"], current.s3_endpoint_url)
    _boot_static_nodes(paths, saved, progress)
    return replace(current, already_running=True)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "the sandbox needs root: its nodes are slurmds with their own hostnames and cgroups, and "
            "its login user is not you but the OS's (ec2-user)",
            "run it as root (e.g. in a VM or container)",
        )


def _prepare(
    paths: SandboxPaths,
    options: SandboxOptions,
    environ: Mapping[str, str],
    alive: tuple[str, ...],
    dead: tuple[str, ...],
    progress: Progress,
) -> tuple[daemons.DaemonContext, dict]:
    """Programs, directories and keys; then, with daemons ``alive``, the saved ports of the ``dead`` ones,
    else a fresh layout. Returns how the daemons start and what sandbox.json holds."""
    programs = files.find_programs(environ)
    files.check_paths(paths)
    files.make_dirs(paths)
    files.ensure_keys(paths, programs["ssh-keygen"])
    env = files.daemon_env(paths, environ, MARKER_ENV)
    saved = _load_state(paths) or {}
    if alive:
        progress(f"{', '.join(alive)} still running: restarting only {', '.join(dead)}, on the same ports")
        ports = daemons.ports_for_restart(saved, dead)
        saved["buckets"] = list(dict.fromkeys([*saved.get("buckets", ()), *options.buckets]))
    else:
        saved = lay_out(paths, programs, options, saved, progress)
        ports = saved["ports"]
    namespace = daemons.Namespace(_namespace_pid(saved, alive))
    return daemons.DaemonContext(paths, programs, env, ports, namespace), saved


def _namespace_pid(saved: dict, alive: tuple[str, ...]) -> int | None:
    """A live process in the head node's namespace (new daemons join it), or None: a new namespace."""
    for entry in saved.get("processes", []):
        if entry["name"] in ("head", *daemons.IN_NAMESPACE) and entry["name"] in alive:
            return int(entry["pid"])
    return None


def _boot_static_nodes(paths: SandboxPaths, saved: dict, progress: Progress) -> None:
    """Static nodes are always up: power up those that are powered down (at start), and replace those whose
    slurmd is gone (as clustermgtd replaces an unhealthy static node)."""
    env = nodes.admin_env(paths)
    states = nodes.node_states(env)
    static = [n["name"] for n in saved.get("nodes", []) if not n["dynamic"]]
    powered_down = [name for name in static if states.get(name, "").endswith("~")]
    lost = [name for name in static if name not in powered_down and not nodes.slurmd_alive(paths, name)]
    if powered_down:
        progress(f"booting static node(s) {', '.join(powered_down)}")
        nodes.power_up(env, powered_down)
    if lost:
        progress(f"static node(s) {', '.join(lost)} lost: booting replacements")
        holder = daemons.running_namespace(saved).pid
        if holder is not None:
            nodes.boot_again(paths, holder, lost)


def _start_daemons(
    state: StateDir,
    ctx: daemons.DaemonContext,
    saved: dict,
    alive: tuple[str, ...],
    dead: tuple[str, ...],
    progress: Progress,
) -> None:
    """Start ``dead`` in order, bring S3's objects back, re-register and check over SSH; on failure
    stop what was started here (``alive`` daemons keep running) and raise."""
    paths = ctx.paths
    if not alive:  # a stopped sandbox's S3 starts empty
        sandbox_s3.forget(ctx.s3_recording)
    replay_from = sandbox_s3.set_aside(ctx.s3_recording) if "s3" in dead and alive else None
    kept = [p for p in saved.get("processes", []) if p["name"] not in dead]  # an autostop timer stays too
    started: list[procs.ProcessRecord] = []

    def spawned(record: procs.ProcessRecord) -> None:
        started.append(record)
        saved["processes"] = kept + [r.to_json() for r in started]  # so `down` finds it even if up dies now
        write_private_json(paths.state_file, saved)

    try:
        for name in dead:
            progress(f"{'restarting' if alive else 'starting'} {name}")
            lost = daemons.start(name, ctx, spawned)
            if lost and alive:
                progress(
                    f"warning: slurmctld had not saved {len(lost)} job(s) before it died, and lost them "
                    f"(job ids {', '.join(lost[:10])}): `clustertools status` shows their subjects MISSING, "
                    "`clustertools resubmit --missing` runs them again"
                )
        if replay_from is not None:
            _replay_s3(ctx.s3_url, replay_from, progress)
        _create_buckets(ctx.s3_url, tuple(saved["buckets"]))
        saved["images"] = [
            image.__dict__ for image in sandbox_images.publish(ctx.registry_url, Path(ctx.programs["busybox"]))
        ]
        write_private_json(paths.state_file, saved)
        record = _register(state, paths, saved["user"], ctx.ports["ssh"], ctx.s3_url)
        progress("checking the head node over SSH")
        _check_over_ssh(record)
        _boot_static_nodes(paths, saved, progress)
    except BaseException:
        if not alive:  # the nodes this call booted go with it
            nodes.stop_all(paths, [n["name"] for n in saved.get("nodes", [])])
        procs.stop(reversed(started))
        saved["processes"] = kept
        write_private_json(paths.state_file, saved)
        raise


def _replay_s3(url: str, recording: Path, progress: Progress) -> None:
    progress("bringing the S3 endpoint's objects back")
    sent, failed = sandbox_s3.replay(url, recording)
    if failed:
        progress(
            f"warning: {failed} of {sent + failed} recorded S3 requests could not be replayed: "
            "some objects may be missing or old"
        )
    recording.unlink()


def sandbox_down(state: StateDir, *, progress: Progress, purge: bool = False) -> list[str]:
    """Stop exactly the sandbox's processes (and what they left behind). Returns what was stopped."""
    paths = files.sandbox_paths(state.sandbox)
    saved = _load_state(paths)
    stopped: list[str] = []
    if saved and saved.get("processes"):
        records = [procs.ProcessRecord.from_json(p) for p in saved["processes"]]
        by_name = {r.name: r for r in records}
        if "slurmctld" in by_name and procs.is_running(by_name["slurmctld"]):
            cancel_all_jobs(state, paths, saved["user"], progress)
        nodes.stop_all(paths, [n["name"] for n in saved.get("nodes", [])])  # as their instances are terminated
        alive = [r for r in reversed(records) if procs.is_running(r)]
        progress(f"stopping {', '.join(r.name for r in alive) or 'nothing (already stopped)'}")
        left = procs.stop(alive)
        stopped = [r.name for r in alive if r not in left]
        saved["processes"] = [r.to_json() for r in left]
        write_private_json(paths.state_file, saved)
        if left:
            raise SandboxError(
                f"could not stop {', '.join(f'{r.name} (pid {r.pid})' for r in left)}", "stop them by hand with kill -9"
            )
    strays = procs.find_marked((MARKER_ENV, str(paths.root)))
    if strays:
        progress(f"stopping {len(strays)} leftover job process(es)")
        procs.kill_pids(strays)
        stopped.append(f"{len(strays)} leftover process(es)")
    nodes.remove_node_scratch((saved or {}).get("uid"), MARKER_ENV, str(paths.root))
    left_cgroups = nodes.remove_cgroups((saved or {}).get("cgroups", {}))
    if left_cgroups:
        progress(f"warning: cgroups still in use, not removed: {', '.join(left_cgroups[:3])}")
    shutil.rmtree(paths.runtime, ignore_errors=True)  # sockets and the nodes' spools: gone with the nodes
    if purge:
        forget_cluster(state, SANDBOX_CLUSTER)
        shutil.rmtree(paths.root, ignore_errors=True)
    return stopped


def _register(state: StateDir, paths: SandboxPaths, user: str, ssh_port: int, s3_url: str) -> ClusterRecord:
    """Pin the host key we generated (no trust on first use needed) and record the cluster."""
    known_hosts = state.known_hosts(SANDBOX_CLUSTER)
    algo, blob = Path(f"{paths.ssh_host_key}.pub").read_text().split()[:2]
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known_hosts.write_text(f"[127.0.0.1]:{ssh_port} {algo} {blob}\n")
    record = ClusterRecord(
        name=SANDBOX_CLUSTER,
        provider="ssh",
        host="127.0.0.1",
        port=ssh_port,
        user=user,
        identity_file=paths.user_key,
        known_hosts=known_hosts,
        sandbox=True,
        s3_endpoint_url=s3_url,
        region=SANDBOX_REGION,
        host_key=f"{algo} {sha256_fingerprint(base64.b64decode(blob))}",
    )
    save_cluster(state, record)
    return record


def _check_over_ssh(record: ClusterRecord) -> None:
    from cluster_tools.services.remote.cluster_shell import connect

    with connect(record) as conn:
        conn.run(["sinfo", "-h", "-o", "%P"], timeout=15).check()


def _create_buckets(s3_url: str, buckets: tuple[str, ...]) -> None:
    from cluster_tools.transport.s3 import S3Target, ensure_bucket, make_s3_client

    client = make_s3_client(S3Target(region=SANDBOX_REGION, endpoint_url=s3_url, sandbox=True))
    for bucket in dict.fromkeys(buckets):
        ensure_bucket(client, bucket, SANDBOX_REGION)


def _load_state(paths: SandboxPaths) -> dict | None:
    try:
        return json.loads(paths.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
