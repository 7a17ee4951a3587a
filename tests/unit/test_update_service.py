"""`clustertools update` (services/aws/lifecycle_update.py) with ParallelCluster replaced at OUR transport's boundary.

What runs for real: the project's section rendered and validated as `up` does, and ParallelCluster's OWN update check
(pcluster.config.config_patch.ConfigPatch with each parameter's UpdatePolicy, through pcluster_schema.preview_update)
comparing it with the config the cluster runs. What is faked, in cluster_tools.transport.pcluster only: describe (the
fleet's state), the running config's text (ParallelCluster's bucket), update-cluster, update-compute-fleet and the
stack's events, answering with the records the transport builds (see test_transport_pcluster.py for those).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from cluster_tools.cli import cli
from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.aws import lifecycle_update as lu
from cluster_tools.services.aws.cluster_config import validate_project_cluster
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from tests.unit import pcluster_records as records
from tests.unit.pcluster_fakes import transport_installer

REGION, T0 = records.REGION, records.T0
HEAD = pc.Instance(
    instance_id="i-0a1b2c3d4e5f60718",
    instance_type="t3.medium",
    state="running",
    private_ip="10.0.1.25",
    public_ip="54.210.7.9",
    launch_time=T0,
)
QUEUE = "Scheduling.SlurmQueues[spot].ComputeResources[spot]"


def project_text(
    *,
    max_count: int = 10,
    instance_types: str = "c6i.xlarge, c5.xlarge",
    os_line: str = "",
    allowed_ips: str | None = None,
) -> str:
    text = render_project_file("study", "sandbox", "s3://up-out/study")
    text = text.replace("instance_types: [c6i.xlarge, c5.xlarge]", f"instance_types: [{instance_types}]")
    text = text.replace("max_count: 10 ", f"max_count: {max_count} ")
    if allowed_ips:
        text = text.replace("# allowed_ips: 203.0.113.7/32", f"allowed_ips: {allowed_ips}")
    return text.replace("  template: spot-cpu", "  template: spot-cpu" + os_line)


def running_config() -> str:
    rendered, problems = validate_project_cluster(parse_project(project_text()), allowed_ip="203.0.113.7/32")
    assert problems == []
    return rendered.yaml_text


def described(*, fleet: str = "RUNNING", stack: str = "CREATE_COMPLETE", head=HEAD) -> pc.ClusterDescription:
    status = stack if not stack.startswith("UPDATE_ROLLBACK") else "UPDATE_FAILED"
    return records.described(status, stack, head=head, fleet=fleet)


@pytest.fixture
def transport(monkeypatch):
    install = transport_installer(monkeypatch)
    install("cluster_config_text", running_config())
    install("update_cluster", pc.UpdateResult(name="study", dry_run=False, change_set=(), cluster=None))
    install("update_compute_fleet", pc.ComputeFleet(status="STOP_REQUESTED", last_status_updated_time=T0))
    return install


RECORD = ClusterRecord(
    name="study",
    provider="parallelcluster",
    host="54.210.7.9",
    user="ec2-user",
    known_hosts="/nonexistent/known_hosts",
    region=REGION,
)


def changes_by_parameter(plan: lu.UpdatePlan) -> dict[str, list[lu.ConfigChange]]:
    found: dict[str, list[lu.ConfigChange]] = {}
    for change in plan.changes:
        found.setdefault(change.parameter, []).append(change)
    return found


def test_dry_run_shows_a_max_count_and_an_instance_type_change_as_parallelcluster_judges_them(transport):
    transport("describe_cluster", described(fleet="RUNNING"))
    update = transport("update_cluster", AssertionError("a dry run must not update"))
    project = parse_project(project_text(max_count=20, instance_types="c6i.xlarge, c5a.xlarge"))
    outcome = lu.update_cluster(project, RECORD, dry_run=True)
    plan = outcome.plan
    assert not outcome.applied and update.calls == [] and plan.fleet_status == "RUNNING"
    found = changes_by_parameter(plan)
    (count,) = found[f"{QUEUE}.MaxCount"]
    assert (count.current, count.requested, count.check) == ("10", "20", "SUCCEEDED")  # growing: in place
    (removed,) = [c for c in found[f"{QUEUE}.Instances"] if c.requested == "-"]
    (added,) = [c for c in found[f"{QUEUE}.Instances"] if c.current == "-"]
    assert (removed.current, added.requested, added.allowed) == (
        "InstanceType: c5.xlarge",
        "InstanceType: c5a.xlarge",
        True,
    )
    # pcluster's COMPUTE_FLEET_STOP_ON_REMOVE: a type taken away needs the fleet stopped, while it runs
    assert (removed.check, removed.policy, removed.reason) == (
        "ACTION NEEDED",
        "COMPUTE_FLEET_STOP_ON_REMOVE",
        "All compute nodes must be stopped",
    )
    assert plan.needs_fleet_stop == (removed,) and plan.never == ()
    # the running config's SSH ingress is kept: the project does not restate it
    assert "AllowedIps: 203.0.113.7/32" in plan.target_yaml and "MaxCount: 20" in plan.target_yaml


def test_a_fleet_stop_change_is_refused_without_stop_fleet_and_nothing_changes(transport):
    transport("describe_cluster", described(fleet="RUNNING"))
    fleet = transport("update_compute_fleet", AssertionError("no fleet change when refused"))
    project = parse_project(project_text(instance_types="c6i.xlarge, c5a.xlarge"))
    with pytest.raises(lu.UpdateRefused) as refused:
        lu.update_cluster(project, RECORD)
    assert "1 change(s) need the compute fleet of study stopped" in refused.value.message
    assert "--stop-fleet" in refused.value.hint and fleet.calls == []
    assert pc.update_cluster.calls == []


def test_stop_fleet_stops_updates_waits_and_starts_again(transport):
    transport(
        "describe_cluster",
        described(fleet="RUNNING"),
        described(fleet="STOPPING"),
        described(fleet="STOPPED"),
        described(fleet="STOPPED", stack="UPDATE_IN_PROGRESS"),
        described(fleet="STOPPED", stack="UPDATE_COMPLETE"),
        described(fleet="RUNNING", stack="UPDATE_COMPLETE"),
    )
    fleet = pc.update_compute_fleet
    seen: list[str] = []
    project = parse_project(project_text(max_count=20, instance_types="c6i.xlarge, c5a.xlarge"))
    outcome = lu.update_cluster(
        project, RECORD, stop_fleet=True, progress=seen.append, poll_seconds=0, sleep=lambda s: None
    )
    assert outcome.applied and outcome.fleet_stopped_and_started and outcome.stack_status == "UPDATE_COMPLETE"
    assert [args[1] for args, _ in fleet.calls] == ["STOP_REQUESTED", "START_REQUESTED"]
    ((args, kwargs),) = pc.update_cluster.calls
    assert args[0] == "study" and "MaxCount: 20" in args[1] and "c5a.xlarge" in args[1] and kwargs == {"region": REGION}
    assert seen[:2] == ["compute fleet of study: STOPPING", "compute fleet of study: STOPPED"]
    assert "updating study: 3 change(s)" in seen and seen[-1] == "compute fleet of study: RUNNING"


def test_a_max_count_change_applies_in_place_while_the_fleet_runs(transport):
    transport(
        "describe_cluster", described(), described(stack="UPDATE_IN_PROGRESS"), described(stack="UPDATE_COMPLETE")
    )
    fleet = transport("update_compute_fleet", AssertionError("a max_count change needs no fleet stop"))
    outcome = lu.update_cluster(parse_project(project_text(max_count=40)), RECORD, poll_seconds=0, sleep=lambda s: None)
    assert outcome.applied and not outcome.fleet_stopped_and_started and fleet.calls == []
    assert [c.parameter for c in outcome.plan.changes] == [f"{QUEUE}.MaxCount"]


def test_a_change_parallelcluster_cannot_make_in_place_is_refused_with_its_reason(transport):
    transport("describe_cluster", described(fleet="STOPPED"))
    project = parse_project(project_text(os_line="\n  os: ubuntu2204"))
    plan = lu.update_cluster(project, RECORD, dry_run=True).plan
    (os_change,) = [c for c in plan.changes if c.parameter == "Image.Os"]
    assert os_change.policy == "UNSUPPORTED" and plan.never and os_change in plan.never
    with pytest.raises(lu.UpdateRefused) as refused:
        lu.update_cluster(project, RECORD)
    assert refused.value.message.startswith("ParallelCluster cannot change Image.Os of study in place")
    assert "clustertools down" in refused.value.hint and pc.update_cluster.calls == []


def test_no_change_is_nothing_to_do(transport):
    transport("describe_cluster", described())
    outcome = lu.update_cluster(parse_project(project_text()), RECORD)
    assert outcome.plan.changes == () and not outcome.applied and pc.update_cluster.calls == []


def test_a_cluster_busy_with_another_change_is_refused(transport):
    transport("describe_cluster", described(stack="UPDATE_IN_PROGRESS"))
    with pytest.raises(lu.UpdateRefused, match="study is UPDATE_IN_PROGRESS: one change at a time"):
        lu.update_cluster(parse_project(project_text(max_count=20)), RECORD, dry_run=True)


def test_a_failed_update_names_the_first_failure_and_the_rollback(transport):
    failed = pc.StackEvent(
        event_id="e1",
        timestamp=datetime.now(UTC),
        logical_id="ComputeFleetLaunchTemplate",
        resource_type="AWS::EC2::LaunchTemplate",
        status="UPDATE_FAILED",
        reason="Invalid type",
    )
    transport("describe_cluster", described(), described(stack="UPDATE_ROLLBACK_COMPLETE"))
    transport("get_cluster_stack_events", ([failed], None))
    with pytest.raises(lu.ClusterToolsError) as caught:
        lu.update_cluster(parse_project(project_text(max_count=20)), RECORD, poll_seconds=0, sleep=lambda s: None)
    assert caught.value.message == (
        "updating study failed: UPDATE_FAILED: ComputeFleetLaunchTemplate "
        "(AWS::EC2::LaunchTemplate) UPDATE_FAILED: Invalid type"
    )
    assert "rolled the stack back" in caught.value.hint


def test_the_sandbox_and_registered_clusters_are_not_updated(transport):
    sandbox = RECORD.model_copy(update={"name": "sandbox", "provider": "ssh", "sandbox": True})
    with pytest.raises(ConfigError, match="sandbox is not a ParallelCluster cluster") as caught:
        lu.update_cluster(parse_project(project_text()), sandbox)
    assert "sandbox up" in caught.value.hint


def test_another_projects_cluster_is_refused(transport):
    transport("describe_cluster", described())
    other = RECORD.model_copy(update={"name": "other"})
    with pytest.raises(ConfigError, match="the project's cluster is study, not other"):
        lu.update_cluster(parse_project(project_text(max_count=20)), other, dry_run=True)


def test_the_cli_prints_the_change_set_and_what_each_change_needs(transport, tmp_path):
    transport("describe_cluster", described(fleet="RUNNING"))
    state = StateDir(tmp_path / "state")
    save_cluster(state, RECORD.model_copy(update={"known_hosts": state.known_hosts("study")}))
    project_file = tmp_path / "clustertools.yaml"
    project_file.write_text(project_text(max_count=20, instance_types="c6i.xlarge, c5a.xlarge"))
    result = CliRunner().invoke(
        cli, ["--project", str(project_file), "update", "--dry-run"], env={"CLUSTERTOOLS_STATE_DIR": str(state.root)}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "study: 3 change(s); its compute fleet is RUNNING"
    assert f"  {QUEUE}.MaxCount: 10 -> 20  [in place]" in lines
    assert f"  {QUEUE}.Instances: - -> InstanceType: c5a.xlarge  [in place]" in lines
    assert (
        f"  {QUEUE}.Instances: InstanceType: c5.xlarge -> -  [needs the compute fleet stopped: --stop-fleet]" in lines
    )
    assert lines[-1] == (
        "dry run: `clustertools update --stop-fleet` would apply these to study (its compute fleet "
        "is RUNNING); nothing was changed"
    )


def test_the_templates_drain_strategy_lets_a_queue_change_apply_while_the_fleet_runs(transport):
    """QueueUpdateStrategy DRAIN (cluster-config/_macros.yaml.j2): ParallelCluster's QUEUE_UPDATE_STRATEGY policy
    then applies a queue's change in place, its nodes replaced once their tasks end; without it the same change needs
    the whole compute fleet stopped (checked with the strategy taken out of both configs)."""
    transport("describe_cluster", described(fleet="RUNNING"))
    text = project_text().replace("  # root_volume_gb: 100", "  root_volume_gb: 120")
    plan = lu.update_cluster(parse_project(text), RECORD, dry_run=True).plan
    (change,) = plan.changes
    assert (change.parameter, change.current, change.requested) == (
        "Scheduling.SlurmQueues[spot].ComputeSettings.LocalStorage.RootVolume.Size",
        "100",
        "120",
    )
    assert (change.policy, change.check, plan.needs_fleet_stop) == ("QUEUE_UPDATE_STRATEGY", "SUCCEEDED", ())
    without = [
        c
        for c in lu.preview_update(
            running_config().replace("QueueUpdateStrategy: DRAIN", ""),
            plan.target_yaml.replace("QueueUpdateStrategy: DRAIN", ""),
            lu.ClusterFacts("study", compute_running=True),
            REGION,
        )
    ]
    assert [c.check for c in without] == ["ACTION NEEDED"]


def test_a_stopped_head_node_is_started_first(transport):
    """autostop stopped it: the dry run still shows the change set; the update is refused, naming start."""
    stopped = pc.Instance(
        instance_id=HEAD.instance_id, instance_type="t3.medium", state="stopped", private_ip="10.0.1.25"
    )
    transport("describe_cluster", described(fleet="STOPPED", head=stopped))
    project = parse_project(project_text(max_count=20))
    assert [c.parameter for c in lu.update_cluster(project, RECORD, dry_run=True).plan.changes] == [f"{QUEUE}.MaxCount"]
    with pytest.raises(lu.UpdateRefused, match="the head node of study is stopped") as refused:
        lu.update_cluster(project, RECORD)
    assert refused.value.hint == "`clustertools start -c study`, then update" and pc.update_cluster.calls == []


def test_the_cli_json_lists_each_change_with_what_it_needs(transport, tmp_path):
    import json

    transport("describe_cluster", described(fleet="RUNNING"))
    state = StateDir(tmp_path / "state")
    save_cluster(state, RECORD.model_copy(update={"known_hosts": state.known_hosts("study")}))
    project_file = tmp_path / "clustertools.yaml"
    project_file.write_text(project_text(max_count=20))
    result = CliRunner().invoke(
        cli,
        ["--project", str(project_file), "update", "--dry-run", "--json"],
        env={"CLUSTERTOOLS_STATE_DIR": str(state.root)},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["cluster"], data["fleet"], data["dry_run"], data["applied"]) == ("study", "RUNNING", True, False)
    assert data["changes"] == [
        {
            "parameter": f"{QUEUE}.MaxCount",
            "current": "10",
            "requested": "20",
            "check": "SUCCEEDED",
            "policy": "RESIZE_UPDATE_STRATEGY_ON_REMOVE",
            "reason": None,
            "action_needed": None,
            "needs": "in place",
        }
    ]
