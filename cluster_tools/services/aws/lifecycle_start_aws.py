"""`clustertools start` of a ParallelCluster cluster (issue 17, item 1): the head node's instance started, its new
address recorded with its pinned key carried over and checked, then the compute fleet started."""

from __future__ import annotations

import time

from cluster_tools.errors import ClusterToolsError, HostKeyMismatch, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.progress import Progress
from cluster_tools.services.clusters.lifecycle_start import Aws, StartResult
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

# As ParallelCluster finds a cluster's head node, a stopped one included (pcluster/models/cluster.py,
# Cluster._get_instance_filters; the tags from pcluster/constants.py).
_STATES = ["pending", "running", "stopping", "stopped"]


def default_aws(record: ClusterRecord) -> Aws:
    from cluster_tools.services.aws.preflight import make_clients
    from cluster_tools.transport import pcluster

    return Aws(make_clients(record.region or "us-east-1").ec2, pcluster.update_compute_fleet)


def head_node(ec2, cluster: str) -> dict | None:
    """The head node's EC2 instance (its description), or None when EC2 has none left (the cluster was deleted)."""
    filters = [
        {"Name": "tag:parallelcluster:cluster-name", "Values": [cluster]},
        {"Name": "instance-state-name", "Values": _STATES},
        {"Name": "tag:parallelcluster:node-type", "Values": ["HeadNode"]},
    ]
    found = [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    return found[0] if found else None


def start_parallelcluster(
    state: StateDir, record: ClusterRecord, connect: ShellFactory, aws: Aws, progress: Progress
) -> StartResult:
    instance = head_node(aws.ec2, record.name)
    if instance is None:
        raise ClusterToolsError(
            f"cluster {record.name} has no head node in EC2 ({record.region}): it was deleted",
            f"clustertools up creates it again; clustertools forget {record.name} drops the record",
        )
    started = []
    if instance["State"]["Name"] != "running":
        instance = _run_instance(aws, record.name, instance, progress)
        started.append(f"head node {instance['InstanceId']}")
    host = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress")
    if not host:
        raise ClusterToolsError(
            f"the head node of {record.name} runs but has no address yet",
            f"run clustertools start -c {record.name} again in a minute",
        )
    record = _check_at(state, record, host, connect, aws, progress)
    # START_REQUESTED on a RUNNING fleet changes nothing (pcluster/models/compute_fleet_status_manager.py,
    # update_status: "Compute fleet already in RUNNING status"): said "started" only when it was not running.
    fleet = aws.update_compute_fleet(record.name, "START_REQUESTED", region=record.region)
    if getattr(fleet, "status", None) != "RUNNING":
        progress("the compute fleet is starting")
        started.append("compute fleet")
    return StartResult(record.name, tuple(started), host=record.host)


def _run_instance(aws: Aws, cluster: str, instance: dict, progress: Progress) -> dict:
    ident = instance["InstanceId"]
    attempts = max(1, int(aws.wait_seconds / aws.poll_seconds))
    if instance["State"]["Name"] == "stopping":  # autostop's shutdown is still under way: it must stop first
        progress(f"waiting for head node {ident} to finish stopping")
        aws.ec2.get_waiter("instance_stopped").wait(
            InstanceIds=[ident], WaiterConfig={"Delay": aws.poll_seconds, "MaxAttempts": attempts}
        )
    if instance["State"]["Name"] != "pending":
        progress(f"starting head node {ident}")
        aws.ec2.start_instances(InstanceIds=[ident])
    aws.ec2.get_waiter("instance_running").wait(
        InstanceIds=[ident], WaiterConfig={"Delay": aws.poll_seconds, "MaxAttempts": attempts}
    )
    return head_node(aws.ec2, cluster) or instance


def _check_at(
    state: StateDir, record: ClusterRecord, host: str, connect: ShellFactory, aws: Aws, progress: Progress
) -> ClusterRecord:
    """The record at ``host``, saved once one connection there showed the key pinned before: the same instance keeps
    its host keys across a stop, so the pin is carried to the new address, and a different key is refused."""
    moved = record.model_copy(update={"host": host})
    if host != record.host:
        progress(f"the head node's address is now {host} (was {record.host}); its pinned host key goes with it")
        _carry_pin(record, host)
    deadline = time.monotonic() + aws.wait_seconds
    while True:
        try:
            with connect(moved) as conn:
                conn.run(["true"], timeout=30).check()
            break
        except HostKeyMismatch:
            raise  # never re-learned: the console or `ssh-keygen -R` says what changed
        except TransportError as exc:  # sshd not up yet after the boot
            if time.monotonic() + aws.poll_seconds > deadline:
                raise ClusterToolsError(
                    f"the head node of {record.name} runs at {host} but SSH did not answer: {exc.message}",
                    f"clustertools triage -c {record.name}",
                ) from exc
            time.sleep(aws.poll_seconds)
    save_cluster(state, moved)
    return moved


def _carry_pin(record: ClusterRecord, host: str) -> None:
    from cluster_tools.transport.known_hosts import carry_pin

    # Nothing pinned (False): the record's host_key still refuses a first contact (cluster_shell.connect).
    carry_pin(record.known_hosts, record.port, record.host, host)
