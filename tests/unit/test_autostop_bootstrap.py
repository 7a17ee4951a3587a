"""The node bootstrap installs the idle autostop on the head node only (step `autostop`): it fetches
autostop.sh and autostop-configure.sh from the bootstrap prefix (a local folder standing in for S3, as in
test_bootstrap.py), arms it with the Args, and installs the systemd timer (systemctl is a stand-in)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.unit.test_bootstrap import ROOT, Node, ok

ROLE = "arn:aws:iam::123456789012:role/clustertools-down"


@pytest.fixture
def head(tmp_path: Path) -> Node:
    node = Node(tmp_path)
    for name in ("autostop.sh", "autostop-configure.sh"):
        shutil.copy(ROOT / "bootstrap" / name, tmp_path / "s3/bucket/clustertools/demo/bootstrap" / name)
    (tmp_path / "systemd").mkdir()
    (tmp_path / "units").mkdir()
    return node


def env(node: Node) -> dict[str, str]:
    cfn = node.tmp / f"cfnconfig-{node.state_name}"
    cfn.write_text(cfn.read_text() + "stack_name=demo\ncfn_region=eu-west-1\n")
    return {
        "CT_AUTOSTOP_DIR": str(node.tmp / "autostop"),
        "CT_SYSTEMD_DIR": str(node.tmp / "systemd"),
        "CT_SYSTEMD_UNIT_DIR": str(node.tmp / "units"),
    }


def test_the_head_node_gets_the_timer_armed_with_the_args(head: Node):
    out = ok(head.run("--runtime", "none", "--autostop-minutes", "45", env=env(head)))
    assert "step autostop: start" in out and "step autostop: done" in out
    conf = (head.tmp / "autostop" / "autostop.conf").read_text()
    for line in ("MINUTES=45", "ACTION=stop", "CLUSTER=demo", "REGION=eu-west-1", "TIMER=systemd", "INTERVAL=60"):
        assert line + "\n" in conf
    assert (head.tmp / "units" / "clustertools-autostop.timer").exists()
    assert "systemctl enable clustertools-autostop.timer" in head.calls()
    assert '"decision":"armed"' in (head.tmp / "autostop" / "status.json").read_text()
    assert "configured: limit 45 min" in (head.log_file.parent / "clustertools-autostop.log").read_text()
    head.clear_calls()
    assert "step autostop: already done" in ok(head.run("--runtime", "none", "--autostop-minutes", "45", env=env(head)))
    assert not any(c.startswith("systemctl") for c in head.calls())


def test_down_passes_the_cloudformation_role(head: Node):
    ok(
        head.run(
            "--runtime",
            "none",
            "--autostop-minutes",
            "60",
            "--autostop-action",
            "down",
            "--autostop-down-role-arn",
            ROLE,
            env=env(head),
        )
    )
    conf = (head.tmp / "autostop" / "autostop.conf").read_text()
    assert "ACTION=down\n" in conf and f"DOWN_ROLE_ARN={ROLE}\n" in conf


def test_a_compute_node_installs_no_autostop(head: Node):
    ok(head.run("--runtime", "none", env=env(head)))  # the head node writes bootstrap.env first
    compute = Node(head.tmp, role="ComputeFleet", state_name="compute-state")
    out = ok(compute.run("--runtime", "none", "--autostop-minutes", "45", env=env(compute)))
    assert "autostop" not in out and not (head.tmp / "autostop").exists()


def test_without_the_args_nothing_is_installed(head: Node):
    out = ok(head.run("--runtime", "none", env=env(head)))
    assert "autostop" not in out and not (head.tmp / "autostop").exists()


def test_dry_run_only_says_it(head: Node):
    out = ok(head.run("--runtime", "none", "--autostop-minutes", "45", "--dry-run", env=env(head)))
    assert "step autostop: would run: install_autostop" in out and not (head.tmp / "autostop").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--autostop-minutes", "0"], "--autostop-minutes must be 1..10080"),
        (["--autostop-minutes", "99999"], "--autostop-minutes must be 1..10080"),
        (["--autostop-minutes", "5", "--autostop-action", "terminate"], "must be stop or down"),
        (["--autostop-minutes", "5", "--autostop-action", "down"], "needs --autostop-down-role-arn"),
        (["--autostop-minutes", "5", "--autostop-down-role-arn", "role/x"], "must be an IAM role ARN"),
    ],
)
def test_bad_autostop_args_exit_2(head: Node, args: list[str], message: str):
    result = head.run("--runtime", "none", *args, env=env(head))
    assert result.returncode == 2 and message in result.stderr
