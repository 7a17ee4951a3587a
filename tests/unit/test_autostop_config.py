"""Autostop in the project model and the rendered ParallelCluster config: the head node alone gets the
autostop Args (and, for `down`, the policy that lets it delete the stack); the result passes ParallelCluster's
own schema offline; `up --autostop` overrides the project's minutes."""

from __future__ import annotations

import pytest
import yaml

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from tests.helpers import assert_golden
from tests.unit.test_cluster_config import MINIMAL, problems_of

POLICY = "arn:aws:iam::123456789012:policy/clustertools-autostop-down"
ROLE = "arn:aws:iam::123456789012:role/clustertools-autostop-down"
SECRETS = "arn:aws:iam::123456789012:policy/read-input-secret"


def rendered(extra: str, monkeypatch) -> dict:
    from cluster_tools.services.aws import cluster_config as service

    monkeypatch.setattr(service, "_local_user", lambda: "alice")
    text = service.render_project_cluster(parse_project(MINIMAL + extra), allowed_ip="203.0.113.7/32").yaml_text
    assert problems_of(text) == [], "ParallelCluster's schema and our checks pass"
    return yaml.safe_load(text), text


def test_autostop_args_go_to_the_head_node_only(monkeypatch):
    config, text = rendered("  autostop_minutes: 30\n", monkeypatch)
    assert_golden("cluster_spot-cpu_with-autostop.yaml", text)
    head = config["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Args"]
    queue = config["Scheduling"]["SlurmQueues"][0]["CustomActions"]["OnNodeConfigured"]["Args"]
    assert head == [*queue, "--autostop-minutes", "30", "--autostop-action", "stop"]
    assert "AdditionalIamPolicies" not in config["HeadNode"]["Iam"]


def test_down_adds_the_role_arg_and_the_policy_on_the_head_node_only(monkeypatch):
    config, _ = rendered(
        f"  autostop_minutes: 120\n  autostop_action: down\n  autostop_down_policy_arn: {POLICY}\n"
        f"  autostop_down_role_arn: {ROLE}\n  additional_iam_policies: [{SECRETS}]\n",
        monkeypatch,
    )
    head = config["HeadNode"]
    assert head["CustomActions"]["OnNodeConfigured"]["Args"][-6:] == [
        "--autostop-minutes",
        "120",
        "--autostop-action",
        "down",
        "--autostop-down-role-arn",
        ROLE,
    ]
    assert head["Iam"]["AdditionalIamPolicies"] == [{"Policy": SECRETS}, {"Policy": POLICY}]
    queue = config["Scheduling"]["SlurmQueues"][0]
    assert queue["Iam"]["AdditionalIamPolicies"] == [{"Policy": SECRETS}], "compute nodes cannot delete the stack"


def test_without_autostop_nothing_changes(monkeypatch):
    config, _ = rendered("", monkeypatch)
    assert "--autostop-minutes" not in config["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Args"]


@pytest.mark.parametrize(
    "extra, message",
    [
        ("  autostop_minutes: 0\n", "greater than or equal to 1"),
        ("  autostop_minutes: 20000\n", "less than or equal to 10080"),
        ("  autostop_minutes: 30\n  autostop_action: terminate\n", "'stop' or 'down'"),
        (
            "  autostop_minutes: 30\n  autostop_action: down\n",
            "set autostop_down_policy_arn and autostop_down_role_arn",
        ),
        (f"  autostop_down_policy_arn: {ROLE}\n", "an IAM policy ARN"),
        (f"  autostop_down_role_arn: {POLICY}\n", "an IAM role ARN"),
    ],
)
def test_bad_autostop_settings_are_one_line(extra, message):
    with pytest.raises(ConfigError) as caught:
        parse_project(MINIMAL + extra)
    assert message in caught.value.one_line()


def test_up_autostop_overrides_the_projects_minutes():
    from cluster_tools.services.aws.cluster_config import with_autostop

    project = parse_project(MINIMAL + "  autostop_minutes: 30\n")
    assert with_autostop(project, 45).parallelcluster.autostop_minutes == 45
    assert with_autostop(project, None) is project
    with pytest.raises(ConfigError) as caught:
        with_autostop(project, 0)
    assert "--autostop 0" in caught.value.one_line()


def test_the_up_command_passes_autostop_to_the_service(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from cluster_tools.cli import cli
    from cluster_tools.services.aws import lifecycle_up

    seen = {}

    def fake_up(request):
        seen["autostop_minutes"] = request.autostop_minutes
        raise ConfigError("stop here")

    monkeypatch.setattr(lifecycle_up, "up", fake_up)
    (tmp_path / "clustertools.yaml").write_text(MINIMAL)
    result = CliRunner().invoke(
        cli,
        ["--project", str(tmp_path / "clustertools.yaml"), "up", "--autostop", "15", "--dry-run"],
        env={"CLUSTERTOOLS_STATE_DIR": str(tmp_path / "state")},
    )
    assert "stop here" in result.output and seen["autostop_minutes"] == 15
    bad = CliRunner().invoke(cli, ["--project", str(tmp_path / "clustertools.yaml"), "up", "--autostop", "0"])
    assert bad.exit_code == 2 and "--autostop" in bad.output
