"""`cost --cluster`: a ParallelCluster cluster's cost so far, with ParallelCluster replaced at our
transport's boundary (recorded records, as in test_up_service.py); prices from the shipped table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cluster_tools.clusters import ClusterRecord
from cluster_tools.config import parse_project
from cluster_tools.errors import ConfigError
from cluster_tools.pricing import instance_price, load_price_table, storage_monthly_price
from cluster_tools.services.cost import cluster_cost
from cluster_tools.services.project import render_project_file
from cluster_tools.state import StateDir
from cluster_tools.transport import pcluster as pc

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
HEAD = pc.Instance("i-0a1b2c3d4e5f60718", "t3.medium", "running", "10.0.1.25", "54.210.7.9", launch_time=T0)


@pytest.fixture
def aws(monkeypatch):
    described = pc.ClusterDescription(name="study", region="us-east-1", version="3.16.1", status="CREATE_COMPLETE",
                                      stack_status="CREATE_COMPLETE", stack_arn="arn:x", scheduler="slurm",
                                      compute_fleet_status="RUNNING", creation_time=T0, last_updated_time=T0,
                                      head_node=HEAD)
    monkeypatch.setattr(pc, "describe_cluster", lambda name, *, region=None: described)
    monkeypatch.setattr(pc, "describe_cluster_instances", lambda name, **kw: [
        pc.Instance("i-1", "c6i.xlarge", "running", "10.0.1.77", node_type="ComputeNode", queue_name="spot")])


def test_head_node_uptime_storage_and_what_bills_now(aws, tmp_path):
    text = render_project_file("study", "sandbox", "s3://out/study").replace(
        "  template: spot-cpu", "  template: spot-cpu\n  shared_storage: {type: ebs, size_gb: 500}")
    project = parse_project(text)
    state = StateDir(tmp_path / "state")
    record = ClusterRecord(name="study", provider="parallelcluster", host="54.210.7.9", user="ec2-user",
                           known_hosts=state.known_hosts("study"), region="us-east-1")
    result = cluster_cost(state, record, project, connect=None, now=T0 + timedelta(hours=48))
    table = load_price_table()
    assert result.head_hours == 48 and result.since == T0
    assert result.head_dollars == pytest.approx(48 * instance_price(table, "us-east-1", "t3.medium").hourly_usd)
    ebs = storage_monthly_price(table, "us-east-1", "ebs_gp3", 500)
    assert result.storage_dollars == pytest.approx(ebs.monthly_usd * 48 / 730) and result.storage.startswith("ebs")
    assert result.running_now == [("i-1", "c6i.xlarge")] and result.hourly_now > 0
    assert result.total == pytest.approx(result.head_dollars + result.storage_dollars)
    assert "no run of this cluster is known here" in result.notes[-1]


def test_the_sandbox_costs_nothing_and_says_why(tmp_path):
    state = StateDir(tmp_path / "state")
    record = ClusterRecord(name="sandbox", host="127.0.0.1", port=2222, user="root", known_hosts=state.known_hosts("x"),
                           sandbox=True)
    with pytest.raises(ConfigError, match="the sandbox: it runs on this machine and costs nothing"):
        cluster_cost(state, record, None, connect=None)
