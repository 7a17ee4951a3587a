"""`describe` of a ParallelCluster cluster (services/clusters/describe.py) and the login user of each OS, with
ParallelCluster replaced at OUR transport's boundary by fakes answering with recorded records (pcluster_records.py).
Needs nothing running: the `up` tests, which talk to a moto server, are tests/integration/test_up_service.py."""

from __future__ import annotations

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.aws import lifecycle_up as lu
from cluster_tools.services.clusters import describe as describe_service
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from tests.unit.pcluster_fakes import transport_installer
from tests.unit.pcluster_records import COMPLETE, FAILED, HEAD, REGION, T0


@pytest.fixture
def transport(monkeypatch):
    return transport_installer(monkeypatch)


def test_ssh_user_follows_the_os():
    # ParallelCluster's OS_MAPPING: Rocky logs in as rocky, not ec2-user
    assert [lu.ssh_user_for(o) for o in ("alinux2023", "rhel9", "rocky9", "ubuntu2204", "ubuntu2404")] == [
        "ec2-user",
        "ec2-user",
        "rocky",
        "ubuntu",
        "ubuntu",
    ]
    with pytest.raises(ConfigError, match="'centos7' is not an OS of ParallelCluster 3"):
        lu.ssh_user_for("centos7")


def test_describe_a_parallelcluster_cluster(transport, tmp_path):
    transport("describe_cluster", COMPLETE)
    instances = transport(
        "describe_cluster_instances",
        [
            pc.Instance(
                "i-0fedcba9876543210",
                "c6i.xlarge",
                "pending",
                "10.0.1.77",
                node_type="ComputeNode",
                queue_name="spot",
                launch_time=T0,
            ),
            pc.Instance(
                "i-0fedcba9876543211",
                "c6i.xlarge",
                "running",
                "10.0.1.78",
                node_type="ComputeNode",
                queue_name="spot",
                launch_time=T0,
            ),
        ],
    )
    info = describe_service.describe(
        StateDir(tmp_path / "state"), None, parse_project(render_project_file("study", "sandbox", "s3://up-out/study"))
    )
    assert (info.name, info.provider, info.status, info.region, info.head_node) == (
        "study",
        "parallelcluster",
        "CREATE_COMPLETE",
        REGION,
        HEAD,
    )
    assert [i.instance_id for i in info.queues["spot"]] == ["i-0fedcba9876543210", "i-0fedcba9876543211"]
    assert instances.calls == [(("study",), {"region": REGION, "node_type": "ComputeNode"})]
    # the head node on-demand and both compute nodes as spot (the init project's queue), from the price table
    from cluster_tools.model.cost.pricing import instance_price, load_price_table

    table = load_price_table()
    expected = (
        instance_price(table, REGION, "t3.medium").hourly_usd
        + 2 * instance_price(table, REGION, "c6i.xlarge", "spot").hourly_usd
    )
    assert info.cost["hourly_usd"] == pytest.approx(expected, abs=1e-4) and info.cost["estimate"] is True
    assert info.cost["source"] == table.label and info.cost_note is None
    assert "2 x c6i.xlarge" in info.cost["lines"][1] and "spot ~ estimate" in info.cost["lines"][1]


def test_describe_without_the_project_prices_compute_on_demand_and_says_so(transport, tmp_path):
    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.store.cluster_store import save_cluster

    state = StateDir(tmp_path / "state")
    save_cluster(
        state,
        ClusterRecord(
            name="study",
            provider="parallelcluster",
            host="127.0.0.1",
            user="ec2-user",
            known_hosts=state.known_hosts("study"),
            region=REGION,
        ),
    )
    transport("describe_cluster", COMPLETE)
    transport(
        "describe_cluster_instances",
        [pc.Instance("i-1", "c6i.xlarge", "running", "10.0.1.77", node_type="ComputeNode", queue_name="spot")],
    )
    info = describe_service.describe(state, "study", None)
    assert "on-demand" in info.cost["lines"][1] and info.cost_note.startswith("queue(s) spot priced on-demand")


def test_describe_a_failed_cluster_gives_the_reason(transport, tmp_path):
    transport("describe_cluster", FAILED)
    transport("describe_cluster_instances", [])
    info = describe_service.describe_parallelcluster("study", REGION)
    assert info.failure_reason == "Failed to execute OnNodeConfigured script." and info.queues == {}


def test_describe_prices_with_the_quote_it_is_given(transport, tmp_path):
    """--live-prices hands describe a quote function (AWS first, the table as fallback): its figures and
    sources are the ones shown."""
    from cluster_tools.model.cost.pricing import PriceQuote

    transport("describe_cluster", COMPLETE)
    transport(
        "describe_cluster_instances",
        [pc.Instance("i-1", "c6i.xlarge", "running", "10.0.1.77", node_type="ComputeNode", queue_name="spot")],
    )
    asked = []

    def quote(region, instance_type, capacity):
        asked.append((region, instance_type, capacity))
        return PriceQuote(
            region=region,
            instance_type=instance_type,
            capacity=capacity,
            hourly_usd=1.0,
            source="EC2 spot price history" if capacity == "spot" else "AWS Pricing API",
        )

    project = parse_project(render_project_file("study", "sandbox", "s3://up-out/study"))
    info = describe_service.describe(StateDir(tmp_path / "state"), None, project, quote=quote)
    assert asked == [(REGION, "t3.medium", "ondemand"), (REGION, "c6i.xlarge", "spot")]
    assert info.cost["hourly_usd"] == 2.0 and info.cost["source"].startswith("AWS's prices where it answered")
    assert "EC2 spot price history" in info.cost["lines"][1]
