"""`cost --cluster`: a ParallelCluster cluster's cost so far, with ParallelCluster replaced at our
transport's boundary (recorded records, as in pcluster_records.py); prices from the shipped table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.cost.pricing import instance_price, load_price_table, storage_monthly_price
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.services.runs.cluster_cost import cluster_cost
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from tests.helpers import no_connect

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
HEAD = pc.Instance("i-0a1b2c3d4e5f60718", "t3.medium", "running", "10.0.1.25", "54.210.7.9", launch_time=T0)


@pytest.fixture
def aws(monkeypatch):
    described = pc.ClusterDescription(
        name="study",
        region="us-east-1",
        version="3.16.1",
        status="CREATE_COMPLETE",
        stack_status="CREATE_COMPLETE",
        stack_arn="arn:x",
        scheduler="slurm",
        compute_fleet_status="RUNNING",
        creation_time=T0,
        last_updated_time=T0,
        head_node=HEAD,
    )
    monkeypatch.setattr(pc, "describe_cluster", lambda name, *, region=None: described)
    monkeypatch.setattr(
        pc,
        "describe_cluster_instances",
        lambda name, **kw: [
            pc.Instance("i-1", "c6i.xlarge", "running", "10.0.1.77", node_type="ComputeNode", queue_name="spot")
        ],
    )


def test_head_node_uptime_storage_and_what_bills_now(aws, tmp_path):
    text = render_project_file("study", "sandbox", "s3://out/study").replace(
        "  template: spot-cpu", "  template: spot-cpu\n  shared_storage: {type: ebs, size_gb: 500}"
    )
    project = parse_project(text)
    state = StateDir(tmp_path / "state")
    record = ClusterRecord(
        name="study",
        provider="parallelcluster",
        host="54.210.7.9",
        user="ec2-user",
        known_hosts=state.known_hosts("study"),
        region="us-east-1",
    )
    result = cluster_cost(state, record, project, connect=no_connect, now=T0 + timedelta(hours=48))
    table = load_price_table()
    assert result.head_hours == 48 and result.since == T0
    assert result.head_dollars == pytest.approx(48 * instance_price(table, "us-east-1", "t3.medium").hourly_usd)
    ebs = storage_monthly_price(table, "us-east-1", "ebs_gp3", 500)
    assert result.storage_dollars == pytest.approx(ebs.monthly_usd * 48 / 730) and result.storage.startswith("ebs")
    assert result.running_now == [("i-1", "c6i.xlarge")] and result.hourly_now > 0
    assert result.total == pytest.approx(result.head_dollars + result.storage_dollars)
    assert "no run of this cluster is known here" in result.notes[-1]


def test_the_sandbox_says_what_it_would_have_cost_on_aws_node_by_node(tmp_path):
    """From sandbox.json (its nodes, when it started) and power.log (as bin/resume.sh and bin/suspend.sh write
    it): each node bills from its boot to its power-down; one still up bills until now."""
    import json

    from cluster_tools.services.sandbox.sandbox_files import sandbox_paths

    state = StateDir(tmp_path / "state")
    paths = sandbox_paths(state.sandbox)
    paths.log.mkdir(parents=True)
    node = {
        "queue": "spot",
        "compute_resource": "spot",
        "instance_type": "c5.xlarge",
        "cpus": 4,
        "real_memory_mb": 7782,
        "port": 0,
    }
    paths.state_file.write_text(
        json.dumps(
            {
                "started_at": T0.isoformat(),
                "nodes": [
                    {**node, "name": "spot-st-spot-1", "dynamic": False},
                    {**node, "name": "spot-dy-spot-1", "dynamic": True},
                    {**node, "name": "spot-dy-spot-2", "dynamic": True},
                ],
            }
        )
    )
    (paths.log / "power.log").write_text(
        "2026-11-20T07:00:00Z resume spot-dy-spot-2 (boot in 2s)\n"  # before this sandbox started: not counted
        "2026-11-20T08:00:00Z resume spot-st-spot-1 (boot in 2s)\n"
        "2026-11-20T09:00:00Z resume spot-dy-spot-1 (boot in 2s)\n"
        "2026-11-20T09:30:00Z suspend spot-dy-spot-1 (round 1)\n"
        "garbage line\n"
    )
    text = render_project_file("study", "sandbox", "s3://out/study")
    record = ClusterRecord(
        name="sandbox", host="127.0.0.1", port=2222, user="ec2-user", known_hosts=state.known_hosts("x"), sandbox=True
    )
    result = cluster_cost(state, record, parse_project(text), connect=no_connect, now=T0 + timedelta(hours=2))
    table = load_price_table()
    spot = instance_price(table, "us-east-1", "c5.xlarge", "spot").hourly_usd
    assert [(n, h) for n, _, h, _ in result.nodes] == [("spot-st-spot-1", 2.0), ("spot-dy-spot-1", 0.5)]
    assert result.nodes[1][3] == pytest.approx(0.5 * spot)
    assert result.running_now == [("spot-st-spot-1", "c5.xlarge")] and result.head_hours == 2.0
    assert result.hourly_now == pytest.approx(instance_price(table, "us-east-1", "t3.medium").hourly_usd + spot)
    assert result.total == pytest.approx(result.head_dollars + 2.5 * spot)
    assert "costs nothing" in result.notes[0]
