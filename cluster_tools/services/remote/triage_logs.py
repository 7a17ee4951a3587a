"""``clustertools triage``: gather the logs that tell why a node did not come up, and hand them to the pure
parser (cluster_tools/model/nodes/node_triage.py, triage_report.py).

- The sandbox and SSH clusters: ONE SSH connection to the head node runs one command that prints the last
  lines of each log file (missing files are reported, not fatal) and ``sinfo -R``.
- ParallelCluster: the fleet status from ``describe_cluster``; the head node's logs (clustermgtd,
  slurm_resume, slurmctld, our bootstrap log) over SSH the same way, or from CloudWatch when the head node
  cannot be reached; the compute node's streams (cloud-init-output, computemgtd, slurmd,
  bootstrap_error_msg) from CloudWatch through ``transport.pcluster.get_cluster_log_events``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.nodes.node_triage import (
    Launch,
    LogFile,
    NodeChoice,
    SourceText,
    choose_node,
    gather_command,
    parse_bootstrap_failures,
    parse_launches,
    split_gathered,
)
from cluster_tools.model.nodes.triage_report import TriageReport, build_report
from cluster_tools.model.project.project_config import Project
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc

BOOTSTRAP_LOG = "/var/log/clustertools-bootstrap.log"
# Where a ParallelCluster head node writes what went wrong at bootstrap and at node launch (clustermgtd,
# slurm_resume), besides clustertools' own log.
PCLUSTER_HEAD_FILES = (
    LogFile("bootstrap", (BOOTSTRAP_LOG,), 3000),
    LogFile("clustermgtd", ("/var/log/parallelcluster/clustermgtd",)),
    LogFile("slurm_resume", ("/var/log/parallelcluster/slurm_resume.log",)),
    LogFile("slurmctld", ("/var/log/slurmctld.log",)),
)
# An existing Slurm cluster: distributions put slurmctld's log in different places.
SSH_HEAD_FILES = (
    LogFile("bootstrap", (BOOTSTRAP_LOG,), 3000),
    LogFile(
        "slurmctld", ("/var/log/slurmctld.log", "/var/log/slurm/slurmctld.log", "/var/log/slurm-llnl/slurmctld.log")
    ),
)
# CloudWatch streams, "{hostname}.{instance_id}.{name}" (ParallelCluster's CloudWatch agent config).
COMPUTE_STREAMS = ("cloud-init-output", "bootstrap_error_msg", "computemgtd", "slurmd")
HEAD_STREAMS = ("clustermgtd", "slurm_resume", "slurmctld", "chef-client", "system-messages", "syslog")
STREAM_EVENTS = 500  # the latest events of each stream

Gather = Callable[[ClusterRecord, Sequence[LogFile], bool], list[SourceText]]


def gather_over_ssh(record: ClusterRecord, files: Sequence[LogFile], sinfo: bool) -> list[SourceText]:
    """Every file's last lines and ``sinfo -R`` in one command over one SSH connection."""
    from cluster_tools.services.remote.cluster_shell import connect

    command, marker = gather_command(files, sinfo=sinfo)
    with connect(record) as conn:
        result = conn.run(command, timeout=60)
    sources = split_gathered(result.text, marker)
    if not sources:
        result.check()  # nothing printed: the shell itself failed; say how
    return sources


def resolve(
    state: StateDir, explicit: str | None, project: Project | None
) -> tuple[ClusterRecord | None, str, str | None]:
    """(record, name, region) of the cluster to triage: -c NAME, else the project's, else the only one known.
    The project's ParallelCluster cluster is triaged from AWS even when ``up`` did not record it (a failed create)."""
    from cluster_tools.errors import ClusterNotFound
    from cluster_tools.store.cluster_store import load_cluster, resolve_cluster_name

    spec = project.parallelcluster if project else None
    ours = None
    if spec is not None:
        from cluster_tools.model.aws.cluster_spec import cluster_name_for

        ours = cluster_name_for(spec, project.name)  # type: ignore[union-attr]
    try:
        record = load_cluster(state, resolve_cluster_name(state, explicit, project.cluster if project else None))
    except ClusterNotFound:
        if ours is None or explicit not in (None, ours):
            raise
        return None, ours, spec.region  # type: ignore[union-attr]
    return record, record.name, record.region or (spec.region if spec and record.name == ours else None)


def triage(
    state: StateDir,
    record: ClusterRecord | None,
    node: str | None,
    *,
    lines: int = 15,
    cluster_name: str | None = None,
    region: str | None = None,
    gather: Gather = gather_over_ssh,
) -> TriageReport:
    """The report for ``node`` (None: the node that failed last, or the last one launched) of a cluster.
    ``record`` may be None for a ParallelCluster cluster that ``up`` has not recorded (its create failed)."""
    if record is not None and record.sandbox:
        return _sandbox(state, record, node, lines, gather)
    if record is None or record.provider == "parallelcluster":
        name = record.name if record else cluster_name
        if name is None:
            raise ClusterToolsError("no cluster to triage", "pass -c NAME")
        return _parallelcluster(name, record, node, lines, region or (record.region if record else None), gather)
    return _ssh(record, node, lines, gather)


def _sandbox(state: StateDir, record: ClusterRecord, node: str | None, lines: int, gather: Gather) -> TriageReport:
    from cluster_tools.services.sandbox import sandbox_files
    from cluster_tools.services.sandbox.sandbox_bootstrap import SandboxNodeFiles

    paths = sandbox_files.sandbox_paths(state.sandbox)
    node_files = SandboxNodeFiles(paths)
    slurmd_logs = sorted(paths.log.glob("slurmd-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    compute = next(
        (log for log in slurmd_logs if log.name == f"slurmd-{node}.log"), slurmd_logs[0] if slurmd_logs else None
    )
    files = (
        LogFile("bootstrap", (str(node_files.log),), 3000),
        LogFile("cloud-init-output", (str(node_files.output),), 3000),
        *((LogFile("slurmd", (str(compute),)),) if compute else ()),
        LogFile("slurmctld", (str(paths.log / "slurmctld.log"),)),
    )
    # The sandbox's logs are files of this machine (root's, where the login user may not read): read here.
    sources = (gather_on_this_machine(paths) if gather is gather_over_ssh else gather)(record, files, True)
    notes = []
    if node not in (None, "head"):
        notes.append(
            f"the sandbox's bootstrap runs on its head node; slurmd's log is {compute.stem if compute else 'absent'}'s"
        )
    return build_report(
        record.name,
        "sandbox",
        sources,
        node="head",
        node_why="the sandbox's head node, where `sandbox bootstrap` runs",
        bootstrap_from=("bootstrap", "cloud-init-output"),
        notes=notes,
        lines=lines,
    )


def gather_on_this_machine(paths) -> Gather:
    """The sandbox's gather: the same command as over SSH, run here as root with the sandbox's slurm.conf."""
    from cluster_tools.transport.local_commands import run_local

    def gather(record: ClusterRecord, files: Sequence[LogFile], sinfo: bool) -> list[SourceText]:
        command, marker = gather_command(files, sinfo=sinfo)
        env = {"SLURM_CONF": str(paths.slurm_conf), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        done = run_local(["bash", "-c", command], env=env, timeout=60)
        return split_gathered(done.stdout, marker)

    return gather


def _ssh(record: ClusterRecord, node: str | None, lines: int, gather: Gather) -> TriageReport:
    sources = gather(record, SSH_HEAD_FILES, True)
    notes = []
    if node:
        notes.append(f"only the head node's logs are read on an SSH cluster: {node}'s own logs stay on {node}")
    return build_report(
        record.name,
        "ssh",
        sources,
        node=None,
        node_why="the head node",
        bootstrap_from=("bootstrap",),
        node_names=(node,) if node else (),
        notes=notes,
        lines=lines,
    )


def _parallelcluster(
    name: str, record: ClusterRecord | None, node: str | None, lines: int, region: str | None, gather: Gather
) -> TriageReport:
    described = pc.describe_cluster(name, region=region)
    notes: list[str] = []
    failures = [f"{code}: {reason}" if reason else code for code, reason in described.failures]
    head = _head_sources(name, record, described, region, gather, notes)
    texts = {s.name: s.text for s in head if s.status == "ok"}
    launches = parse_launches(texts.get("slurm_resume", "")) + parse_launches(texts.get("clustermgtd", ""))
    launches.sort(key=lambda launch: launch.time or "")
    if node in ("head", "HeadNode") or (described.head_node and node == described.head_node.instance_id):
        return build_report(
            name,
            "parallelcluster",
            head,
            node="head",
            node_why="asked for",
            bootstrap_from=_HEAD_BOOTSTRAP,
            fleet=described.compute_fleet_status,
            cluster_status=described.status,
            failures=failures,
            notes=notes,
            lines=lines,
        )
    choice = choose_node(node, launches=launches, failures=parse_bootstrap_failures(texts.get("clustermgtd", "")))
    compute, bootstrap_from = _compute_sources(name, choice, region, notes)
    sources = [*head, *compute]
    launch = choice.launch
    node_names = tuple(
        x for x in (choice.name, launch.instance_id if launch else None, launch.private_ip if launch else None) if x
    )
    why = choice.why + (f"; instance {launch.instance_id}, {launch.private_ip}" if launch and launch.private_ip else "")
    return build_report(
        name,
        "parallelcluster",
        sources,
        node=choice.name or (launch.instance_id if launch else None),
        node_why=why,
        bootstrap_from=bootstrap_from,
        node_names=node_names,
        fleet=described.compute_fleet_status,
        cluster_status=described.status,
        failures=failures,
        notes=notes,
        lines=lines,
    )


_HEAD_BOOTSTRAP = ("bootstrap", "system-messages", "syslog", "chef-client")  # where a head node's bootstrap logs
_COMPUTE_BOOTSTRAP = ("cloud-init-output", "bootstrap_error_msg")  # and a compute node's


def _head_sources(
    name: str,
    record: ClusterRecord | None,
    described: pc.ClusterDescription,
    region: str | None,
    gather: Gather,
    notes: list[str],
) -> list[SourceText]:
    """The head node's logs: over SSH when it can be reached, else from CloudWatch."""
    head: list[SourceText] = []
    if record is not None and described.head_node is not None:
        try:
            head = gather(record, PCLUSTER_HEAD_FILES, True)
        except ClusterToolsError as exc:
            notes.append(f"the head node cannot be reached over SSH ({exc.message}): its logs come from CloudWatch")
    return head or _head_streams(name, described, region)


def _compute_sources(
    name: str, choice: NodeChoice, region: str | None, notes: list[str]
) -> tuple[list[SourceText], tuple[str, ...]]:
    """The chosen compute node's CloudWatch streams (or, with none chosen, the one that logged last), and the
    sources its bootstrap is read from."""
    launch = choice.launch
    if launch is not None and launch.private_ip:
        return _compute_streams(name, launch, region), _COMPUTE_BOOTSTRAP
    if launch is not None:  # only an instance id was given: its streams are found by listing them
        found = _listed_compute_streams(name, region, notes, instance_id=launch.instance_id)
        if found is None:
            notes.append(f"instance {launch.instance_id} has no CloudWatch streams of its own (yet)")
        return (found[1] if found else []), _COMPUTE_BOOTSTRAP
    if choice.name is not None:
        notes.append(
            f"node {choice.name} is not in the head node's recent slurm_resume lines: its CloudWatch "
            "streams cannot be named"
        )
        return [], _COMPUTE_BOOTSTRAP
    found = _listed_compute_streams(name, region, notes)
    if found is None:
        notes.append("no compute node has logged anything: showing the head node's own bootstrap")
        return [], _HEAD_BOOTSTRAP
    notes.append(f"no compute node was launched in the lines read: the one that logged last, {found[0]}")
    return found[1], _COMPUTE_BOOTSTRAP


def _listed_compute_streams(
    name: str, region: str | None, notes: list[str], *, instance_id: str | None = None
) -> tuple[str, list[SourceText]] | None:
    """The compute streams of ``instance_id``, else of the compute node that logged last: (its
    "hostname.instance" prefix, its streams), or None when there are none."""
    try:
        streams = pc.list_cluster_log_streams(name, region=region, node_type="ComputeNode")
    except pc.PclusterError as exc:
        notes.append(f"cannot list the cluster's CloudWatch streams: {exc.message}")
        return None
    latest: dict[str, str] = {}  # "hostname.instance" -> its latest event time (ISO text sorts)
    for stream in streams:
        host, _, rest = stream.name.partition(".")
        instance, _, _ = rest.partition(".")
        if not instance.startswith("i-") or (instance_id and instance != instance_id):
            continue
        when = stream.last_event.isoformat() if stream.last_event else ""
        prefix = f"{host}.{instance}"
        latest[prefix] = max(latest.get(prefix, ""), when)
    if not latest:
        return None
    prefix = max(latest, key=lambda key: latest[key])
    return prefix, [
        _stream(name, f"{prefix}.{stream}", stream, region, node=prefix.split(".")[1]) for stream in COMPUTE_STREAMS
    ]


def _compute_streams(name: str, launch: Launch, region: str | None) -> list[SourceText]:
    prefix = f"{launch.short_hostname}.{launch.instance_id}"
    return [
        _stream(name, f"{prefix}.{stream}", stream, region, node=launch.node or launch.instance_id)
        for stream in COMPUTE_STREAMS
    ]


def _head_streams(name: str, described: pc.ClusterDescription, region: str | None) -> list[SourceText]:
    head = described.head_node
    if head is None or not head.private_ip:
        return [SourceText("head node", "CloudWatch", "missing", node="head node (not running: nothing to read)")]
    prefix = f"ip-{head.private_ip.replace('.', '-')}.{head.instance_id}"
    sources = [_stream(name, f"{prefix}.{stream}", stream, region, node="head node") for stream in HEAD_STREAMS]
    # One of system-messages / syslog exists, by OS: the absent one is no news.
    present = {s.name for s in sources if s.status == "ok"}
    return [
        s
        for s in sources
        if not (
            s.name in ("system-messages", "syslog")
            and s.status == "missing"
            and present & {"system-messages", "syslog"}
        )
    ]


def _stream(name: str, stream: str, label: str, region: str | None, *, node: str) -> SourceText:
    try:
        events = pc.get_cluster_log_events(name, stream, region=region, limit=STREAM_EVENTS)
    except pc.PclusterNotFound:
        return SourceText(label, f"CloudWatch {stream}", "missing", node=node)
    except pc.PclusterError as exc:
        return SourceText(label, f"CloudWatch {stream}", "error", exc.message, node=node)
    return SourceText(label, f"CloudWatch {stream}", "ok", "\n".join(e.message.rstrip("\n") for e in events), node=node)
