"""`autostop.sh --configure`: the options it checks, where it finds the cluster and region, and the systemd
timer it installs where systemd runs (systemctl a stand-in). The harness is test_autostop_script.py's."""

from __future__ import annotations

import pytest

from tests.unit.test_autostop_script import SCRIPT, Node  # the fixture `node` comes from conftest.py


def test_systemd_timer_is_installed_and_removed(node: Node):
    (node.tmp / "systemd").mkdir()
    (node.tmp / "units").mkdir()
    env = {"CT_SYSTEMD_DIR": str(node.tmp / "systemd"), "CT_SYSTEMD_UNIT_DIR": str(node.tmp / "units")}
    node.configure("--minutes", "30", "--interval", "45", env=env)
    timer = (node.tmp / "units" / "clustertools-autostop.timer").read_text()
    service = (node.tmp / "units" / "clustertools-autostop.service").read_text()
    assert "OnUnitActiveSec=45" in timer and "WantedBy=timers.target" in timer
    assert f"ExecStart=/bin/bash {SCRIPT} --once --state-dir {node.tmp / 'state'}" in service
    assert "/opt/slurm/bin" in service  # ParallelCluster's Slurm is not on systemd's default PATH
    assert node.calls() == [
        "systemctl daemon-reload",
        "systemctl enable clustertools-autostop.timer",
        "systemctl restart clustertools-autostop.timer",
    ]
    assert node.status()["timer"] == "systemd"
    node.configure("--minutes", "off", env=env)
    assert node.calls()[-1] == "systemctl disable --now clustertools-autostop.timer"


def test_the_cluster_and_region_come_from_cfnconfig(node: Node):
    node.configure("--minutes", "5")
    conf = (node.tmp / "state" / "autostop.conf").read_text()
    assert "CLUSTER=study\n" in conf and "REGION=us-east-1\n" in conf and "MINUTES=5\n" in conf


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--configure needs --minutes"),
        (["--minutes", "0"], "1..10080 or off"),
        (["--minutes", "20000"], "1..10080 (a week)"),
        (["--minutes", "5", "--action", "terminate"], "stop, down or sandbox"),
        (["--minutes", "5", "--action", "down"], "--action down needs --down-role-arn"),
        (["--minutes", "5", "--down-role-arn", "arn:aws:iam::1:role/x"], "an IAM role ARN"),
        (["--minutes", "5", "--interval", "1"], "2..3600 seconds"),
        (["--minutes", "5", "--runs-dirs", "/home/$(id)"], "paths or globs"),
        (["--minutes", "5", "--bogus"], "unknown argument: --bogus"),
    ],
)
def test_bad_configure_arguments_exit_2(node: Node, args: list[str], message: str):
    result = node.run("--configure", *args)
    assert result.returncode == 2 and message in result.stderr


def test_stop_needs_a_cluster_and_region_off_a_parallelcluster_node(node: Node):
    (node.tmp / "cfnconfig").unlink()
    result = node.run("--configure", "--minutes", "5")
    assert result.returncode == 2 and "needs --cluster and --region" in result.stderr


def test_a_check_before_configure_says_so(node: Node):
    result = node.run("--once")
    assert result.returncode == 1 and "not configured" in result.stderr
