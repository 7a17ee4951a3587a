"""A fresh start of the sandbox (no daemon of it running): plan its nodes, pick its ports and write every file
its daemons and nodes read: Slurm's, the head node's namespace, sshd's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cluster_tools.errors import SandboxError
from cluster_tools.model.aws.pcluster_support import supported_oses
from cluster_tools.model.progress import Progress
from cluster_tools.render.sandbox_cluster import SandboxNode, cgroup_conf, with_ports
from cluster_tools.render.sandbox_layout import SandboxPaths, SandboxSpec, render_sshd_config
from cluster_tools.render.sandbox_node import NodeOS, cfnconfig, node_os
from cluster_tools.services.sandbox import sandbox_daemons as daemons
from cluster_tools.services.sandbox import sandbox_files as files
from cluster_tools.services.sandbox import sandbox_images
from cluster_tools.services.sandbox import sandbox_nodes as nodes
from cluster_tools.services.sandbox.sandbox_files import MARKER_ENV, SANDBOX_CLUSTER, SANDBOX_REGION
from cluster_tools.services.sandbox.sandbox_namespace import NamespaceLayout, free_uid, prepare_layout
from cluster_tools.services.sandbox.sandbox_options import SandboxOptions


@dataclass(frozen=True)
class _Plan:
    os_: NodeOS
    uid: int
    nodes: list[SandboxNode]
    ports: dict


def lay_out(
    paths: SandboxPaths, programs: Mapping[str, str], options: SandboxOptions, previous: dict, progress: Progress
) -> dict:
    """Plan the nodes, pick ports (``previous``'s when they are free), write every file; returns what
    sandbox.json starts with."""
    plan = _plan(options, previous, progress)
    cgroups = nodes.cgroup_parents(paths)
    _write_head_node(paths, programs, options, plan, cgroups)
    _write_sshd_configs(
        paths,
        programs["sshd"],
        SandboxSpec(
            paths=paths,
            user=plan.os_.user,
            ssh_port=plan.ports["ssh"],
            node_env=_node_env(paths, f"http://127.0.0.1:{plan.ports['s3']}"),
        ),
    )
    return {
        "user": plan.os_.user,
        "uid": plan.uid,
        "os": plan.os_.name,
        "options": _options_json(options),
        "buckets": list(options.buckets),
        "ports": plan.ports,
        "nodes": nodes.nodes_json(plan.nodes),
        "cgroups": cgroups,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "processes": [],
    }


def _plan(options: SandboxOptions, previous: dict, progress: Progress) -> _Plan:
    """The nodes' OS and login user's uid, the nodes that fit this machine, and every port."""
    try:
        os_ = node_os(options.os_name, supported_oses())
    except ValueError as exc:
        raise SandboxError(f"--os: {exc}", "clustertools sandbox up --os alinux2023") from None
    planned, notes = nodes.plan(options.nodes)
    for note in notes:
        progress(note)
    ports = daemons.ports_for_start(previous, len(planned), progress)
    planned = with_ports(planned, ports.pop("nodes"))
    return _Plan(os_, free_uid(Path("/etc/passwd").read_text(), os_.user), planned, ports)


def _write_head_node(
    paths: SandboxPaths, programs: Mapping[str, str], options: SandboxOptions, plan: _Plan, cgroups: dict[str, str]
) -> None:
    """Slurm's files (slurm.conf, the nodes', cgroup.conf) and the head node's namespace that holds them."""
    files_ = nodes.cluster_files(
        paths,
        plan.nodes,
        plan.ports,
        idle_time=options.nodes.idle_time,
        memory_scheduling=options.memory_scheduling,
        max_array_size=options.max_array_size,
        max_job_count=options.max_job_count,
        min_job_age=options.min_job_age,
        requeue_delay=options.requeue_delay,
    )
    slurm_files = nodes.write_cluster_files(
        paths, programs, (MARKER_ENV, str(paths.root)), plan.nodes, cgroups, files_, options.nodes.boot_delay
    )
    slurm_files["cgroup.conf"] = cgroup_conf(options.memory_scheduling)  # beside slurm.conf: Slurm looks there
    user = plan.os_.user
    prepare_layout(
        NamespaceLayout(paths.node_fs),
        plan.os_,
        plan.uid,
        authorized_key=Path(f"{paths.user_key}.pub").read_text(),
        slurm_files=slurm_files,
        aws=programs["node-aws"],
        node_names=tuple(n.name for n in plan.nodes),
        cfnconfig=cfnconfig(node_type="HeadNode", stack_name=SANDBOX_CLUSTER, region=SANDBOX_REGION, user=user),
        etc_files=sandbox_images.node_container_config(paths, plan.ports["registry"]),
    )


def _options_json(options: SandboxOptions) -> dict[str, float]:  # boot_delay is in seconds, fractions too
    return {
        "max_array_size": options.max_array_size,
        "max_job_count": options.max_job_count,
        "min_job_age": options.min_job_age,
        "memory_scheduling": int(options.memory_scheduling),
        "requeue_delay": options.requeue_delay,
        "boot_delay": options.nodes.boot_delay,
        "idle_time": options.nodes.idle_time,
    }


def _write_sshd_configs(paths: SandboxPaths, sshd: str, spec: SandboxSpec) -> None:
    """The head node's sshd_config, and the compute nodes' (bin/node-sshd tells node-namespace.sh how each
    node's sshd starts: on the head node's port, at the address the node's name has)."""
    paths.sshd_config.write_text(render_sshd_config(spec))
    node_config = paths.sshd_config.with_name("sshd_config.node")
    node_config.write_text(render_sshd_config(replace(spec, node=True)))
    (paths.bin / "node-sshd").write_text(f"{sshd} {node_config} {spec.ssh_port} {paths.log}\n")
    files.ensure_sshd_privsep_dir()


def _node_env(paths: SandboxPaths, s3_url: str) -> dict[str, str]:
    """What a sandbox node adds to every SSH session and job (an IAM role would give the credentials).
    Not PATH nor SLURM_CONF: a session finds Slurm as on a real node, through a login shell's profile.d."""
    from cluster_tools.transport.s3 import SANDBOX_CREDENTIALS

    key, secret = SANDBOX_CREDENTIALS
    return {
        MARKER_ENV: str(paths.root),
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": SANDBOX_REGION,
    }
