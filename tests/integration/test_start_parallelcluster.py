"""`clustertools start` of a ParallelCluster cluster (issue 17, item 1) at our boundary: EC2 is moto's server (the
head node's instance found by ParallelCluster's tags, started, its new address read); ParallelCluster's
update-compute-fleet and the SSH connection are the two edges given to the service, recorded here."""

from __future__ import annotations

import contextlib

import paramiko
import pytest

from cluster_tools.errors import ClusterToolsError, HostKeyMismatch, TransportError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.services.aws.preflight import make_clients
from cluster_tools.services.clusters.lifecycle_start import Aws, start_cluster
from cluster_tools.store.cluster_store import load_cluster, save_cluster
from cluster_tools.store.state_dir import StateDir
from tests.moto_aws import moto_server

OLD_HOST = "192.0.2.10"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def ec2(endpoint):
    return make_clients("us-east-1", endpoint_url=endpoint, static_credentials=("placeholder", "placeholder")).ec2


def head_node(ec2, cluster: str, *, stopped: bool) -> str:
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [
        {"Key": "parallelcluster:cluster-name", "Value": cluster},
        {"Key": "parallelcluster:node-type", "Value": "HeadNode"},
    ]
    ident = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    if stopped:
        ec2.stop_instances(InstanceIds=[ident])
    return ident


def pinned_record(tmp_path, cluster: str) -> tuple[StateDir, ClusterRecord, paramiko.PKey]:
    state = StateDir(tmp_path / "state")
    key = paramiko.RSAKey.generate(1024)
    record = ClusterRecord(
        name=cluster,
        provider="parallelcluster",
        host=OLD_HOST,
        user="ec2-user",
        known_hosts=state.known_hosts(cluster),
        region="us-east-1",
        host_key=f"ssh-rsa {key.fingerprint}",
    )
    entries = paramiko.HostKeys()
    entries.add(OLD_HOST, "ssh-rsa", key)
    record.known_hosts.parent.mkdir(parents=True, exist_ok=True)
    entries.save(str(record.known_hosts))
    save_cluster(state, record)
    return state, record, key


class Edges:
    """The SSH connection (each attempt recorded; ``failures`` first) and update-compute-fleet."""

    def __init__(self, failures=()) -> None:
        self.failures = list(failures)
        self.hosts: list[str] = []
        self.fleet: list[tuple] = []
        self.fleet_answer = None  # what pcluster's update-compute-fleet returns (a ComputeFleet)

    @contextlib.contextmanager
    def connect(self, record: ClusterRecord):
        self.hosts.append(record.host)
        if self.failures:
            raise self.failures.pop(0)

        class Conn:
            def run(self, argv, timeout=None):
                class Done:
                    def check(self):
                        return self

                return Done()

        yield Conn()

    def update_compute_fleet(self, name, status, *, region=None):
        self.fleet.append((name, status, region))
        return self.fleet_answer


def aws_for(ec2, edges: Edges):
    return lambda record: Aws(ec2, edges.update_compute_fleet, wait_seconds=20, poll_seconds=1)


def test_a_stopped_head_node_is_started_its_address_recorded_its_pin_carried_and_the_fleet_started(ec2, tmp_path):
    ident = head_node(ec2, "study-a", stopped=True)
    state, record, key = pinned_record(tmp_path, "study-a")
    edges = Edges(failures=[TransportError("connection refused")])  # sshd not up at once after the boot
    result = start_cluster(state, record, None, edges.connect, environ={}, aws=aws_for(ec2, edges))
    running = ec2.describe_instances(InstanceIds=[ident])["Reservations"][0]["Instances"][0]
    new_host = running.get("PublicIpAddress") or running["PrivateIpAddress"]
    assert running["State"]["Name"] == "running" and new_host != OLD_HOST
    assert result.started == (f"head node {ident}", "compute fleet") and result.host == new_host
    assert edges.hosts == [new_host, new_host] and edges.fleet == [("study-a", "START_REQUESTED", "us-east-1")]
    assert load_cluster(state, "study-a").host == new_host
    entries = paramiko.HostKeys(str(record.known_hosts))
    assert entries.lookup(new_host)["ssh-rsa"] == key, "the key pinned at up, now for the new address"


def test_a_running_head_node_only_gets_its_fleet_started_and_a_running_fleet_means_nothing_to_start(ec2, tmp_path):
    from cluster_tools.transport.pcluster import ComputeFleet

    head_node(ec2, "study-b", stopped=False)
    state, record, _ = pinned_record(tmp_path, "study-b")
    edges = Edges()
    result = start_cluster(state, record, None, edges.connect, environ={}, aws=aws_for(ec2, edges))
    assert result.started == ("compute fleet",) and edges.fleet == [("study-b", "START_REQUESTED", "us-east-1")]
    edges.fleet_answer = ComputeFleet(status="RUNNING", last_status_updated_time=None)
    again = start_cluster(state, record, None, edges.connect, environ={}, aws=aws_for(ec2, edges))
    assert again.started == () and len(edges.fleet) == 2


def test_a_different_host_key_at_the_new_address_is_refused_and_nothing_is_recorded(ec2, tmp_path):
    head_node(ec2, "study-c", stopped=True)
    state, record, _ = pinned_record(tmp_path, "study-c")
    edges = Edges(failures=[HostKeyMismatch("the head node's host key changed")])
    with pytest.raises(HostKeyMismatch):
        start_cluster(state, record, None, edges.connect, environ={}, aws=aws_for(ec2, edges))
    assert load_cluster(state, "study-c").host == OLD_HOST and edges.fleet == []


def test_a_deleted_cluster_says_so(ec2, tmp_path):
    state, record, _ = pinned_record(tmp_path, "study-gone")
    edges = Edges()
    with pytest.raises(ClusterToolsError, match=r"has no head node in EC2 .*: it was deleted"):
        start_cluster(state, record, None, edges.connect, environ={}, aws=aws_for(ec2, edges))
