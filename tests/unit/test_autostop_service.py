"""`clustertools autostop` and describe's autostop line: the status record and its summary (pure), the one
command that installs and arms autostop on a head node (run here, without sudo, into a temporary dir), what
is sent over SSH to a ParallelCluster head node (a stand-in connection), and the clusters it refuses."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.nodes.autostop_policy import (
    REMOTE_DIR,
    configure_args,
    install_archive,
    parse_autostop_status,
    remote_install_command,
    summary_line,
)
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.store.state_dir import StateDir
from tests.unit.test_cluster_config import MINIMAL

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000
ROLE = "arn:aws:iam::123456789012:role/clustertools-autostop-down"
POLICY = "arn:aws:iam::123456789012:policy/clustertools-autostop-down"


def status(**fields) -> str:
    base = {
        "version": 1,
        "decision": "idle",
        "minutes": 30,
        "action": "stop",
        "interval_seconds": 60,
        "timer": "systemd",
        "checked_epoch": NOW,
        "idle_since_epoch": NOW - 600,
        "fires_at_epoch": NOW + 1200,
        "fired_at_epoch": None,
        "busy": {"jobs": {}, "ssh_sessions": 0, "uploads": 0, "stale_uploads": 0},
        "reasons": [],
        "action_exit": None,
        "log": "/var/log/clustertools-autostop.log",
    }
    return json.dumps({**base, **fields})


def clock(epoch: int) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch).strftime("%H:%M")


def test_summary_lines():
    idle = parse_autostop_status(status())
    assert summary_line(idle, NOW) == (
        f"idle since {clock(NOW - 600)}, fires at {clock(NOW + 1200)} (30 min limit), action stop"
    )
    busy = parse_autostop_status(
        status(
            decision="busy",
            reasons=["3 jobs running", "1 SSH session open"],
            busy={"jobs": {"running": 3}, "ssh_sessions": 1},
        )
    )
    assert summary_line(busy, NOW) == "busy: 3 jobs running / 1 SSH session open (30 min limit, action stop)"
    assert busy.jobs == {"running": 3} and busy.ssh_sessions == 1
    fired = parse_autostop_status(status(decision="fired", fired_at_epoch=NOW - 60, action_exit=0))
    assert summary_line(fired, NOW) == f"fired at {clock(NOW - 60)}: action stop done"
    failed = parse_autostop_status(status(decision="failed", fired_at_epoch=NOW - 60, action_exit=1))
    assert "action stop FAILED (exit 1), see /var/log/clustertools-autostop.log" in summary_line(failed, NOW)
    assert summary_line(parse_autostop_status(status(decision="off", minutes=None)), NOW) == "off"
    late = summary_line(idle, NOW + 900)
    assert late.endswith("; last check 15 min ago: is its timer running?")
    with pytest.raises(ValueError):
        parse_autostop_status("{}")


def test_the_install_command_unpacks_the_scripts_and_arms_autostop(tmp_path):
    scripts = {name: (ROOT / "bootstrap" / name).read_bytes() for name in ("autostop.sh", "autostop-configure.sh")}
    target = tmp_path / "autostop"
    args = [
        *configure_args(20, action="stop", interval=30),
        "--cluster",
        "study",
        "--region",
        "us-east-1",
        "--log",
        str(tmp_path / "autostop.log"),
    ]
    argv = remote_install_command(str(target), args, sudo=False)
    env = {"PATH": "/usr/bin:/bin", "CT_SYSTEMD_DIR": str(tmp_path / "none"), "CT_CFNCONFIG": str(tmp_path / "none")}
    done = subprocess.run(argv, input=install_archive(scripts), capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (target / "autostop.sh").read_bytes() == scripts["autostop.sh"]
    assert (target / "autostop.sh").stat().st_mode & 0o777 == 0o755
    assert "MINUTES=20\n" in (target / "autostop.conf").read_text()
    assert json.loads((target / "status.json").read_text())["decision"] == "armed"
    assert not list(target.glob(".new.*")), "the unpacking dir is removed"


@dataclass
class FakeResult:
    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""


class FakeConnection:
    def __init__(self, result: FakeResult) -> None:
        self.result, self.calls = result, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, argv, *, stdin=None, timeout=None):
        self.calls.append((argv, stdin))
        return self.result


def pc_record(tmp_path: Path) -> ClusterRecord:
    return ClusterRecord(
        name="study",
        provider="parallelcluster",
        host="192.0.2.10",
        user="ec2-user",
        known_hosts=tmp_path / "kh",
        region="us-east-1",
    )


@pytest.fixture
def fake_ssh(monkeypatch):
    from cluster_tools.services.remote import cluster_shell as remote

    conn = FakeConnection(FakeResult())
    monkeypatch.setattr(remote, "connect", lambda record: conn)
    return conn


def test_a_parallelcluster_head_node_gets_the_scripts_and_configure_over_one_sudo_command(tmp_path, fake_ssh):
    from cluster_tools.services.remote.autostop_control import autostop_armed, set_autostop

    state = StateDir(tmp_path / "state")
    project = parse_project(MINIMAL + f"  autostop_down_policy_arn: {POLICY}\n  autostop_down_role_arn: {ROLE}\n")
    result = set_autostop(state, pc_record(tmp_path), project, 90, down=True)
    ((argv, stdin),) = fake_ssh.calls
    assert argv[:4] == ["sudo", "-n", "bash", "-c"] and argv[6] == REMOTE_DIR
    assert argv[7:] == ["--minutes", "90", "--action", "down", "--interval", "60", "--down-role-arn", ROLE]
    with tarfile.open(fileobj=io.BytesIO(stdin)) as archive:
        assert sorted(archive.getnames()) == ["autostop-configure.sh", "autostop.sh"]
    assert (result.action, result.timer, result.minutes) == ("down", "systemd", 90)
    assert autostop_armed(state, "study"), "describe will read its status"
    set_autostop(state, pc_record(tmp_path), project, None)
    assert fake_ssh.calls[-1][0][7:] == ["--minutes", "off"] and not autostop_armed(state, "study")


def test_down_needs_the_projects_policy_and_role(tmp_path, fake_ssh):
    from cluster_tools.services.remote.autostop_control import set_autostop

    with pytest.raises(ConfigError) as caught:
        set_autostop(StateDir(tmp_path / "state"), pc_record(tmp_path), parse_project(MINIMAL), 90, down=True)
    assert "autostop_down_policy_arn and autostop_down_role_arn" in caught.value.one_line()
    assert fake_ssh.calls == []


def test_a_failure_on_the_head_node_is_one_line(tmp_path, fake_ssh):
    from cluster_tools.errors import ClusterToolsError
    from cluster_tools.services.remote.autostop_control import set_autostop

    fake_ssh.result = FakeResult(1, b"", b"sudo: a password is required\n")
    with pytest.raises(ClusterToolsError) as caught:
        set_autostop(StateDir(tmp_path / "state"), pc_record(tmp_path), None, 30)
    assert caught.value.one_line().startswith("autostop on study failed (exit 1): sudo: a password is required")


def test_a_cluster_clustertools_did_not_create_is_never_stopped(tmp_path, fake_ssh):
    from cluster_tools.services.remote.autostop_control import set_autostop

    theirs = ClusterRecord(name="hpc", host="login.example.org", user="me", known_hosts=tmp_path / "kh")
    with pytest.raises(ConfigError) as caught:
        set_autostop(StateDir(tmp_path / "state"), theirs, None, 30)
    assert "autostop never stops it" in caught.value.one_line() and fake_ssh.calls == []


def test_read_autostop_over_a_connection():
    from cluster_tools.services.remote.autostop_control import read_autostop

    class Conn:
        def __init__(self, text):
            self.text = text

        def run(self, command, timeout=None):
            assert command == "cat /var/lib/clustertools/autostop/status.json 2>/dev/null || true"
            return self

    found, note = read_autostop(
        Conn(status(decision="busy", reasons=["1 upload pending"])), f"{REMOTE_DIR}/status.json", now=NOW
    )
    assert note is None and found["summary"] == "busy: 1 upload pending (30 min limit, action stop)"
    assert read_autostop(Conn(""), f"{REMOTE_DIR}/status.json") == (None, None)
    assert read_autostop(Conn("garbage"), f"{REMOTE_DIR}/status.json")[1].startswith("unreadable status")
    gone, _ = read_autostop(Conn(status()), f"{REMOTE_DIR}/status.json", now=NOW, timer_running=False)
    assert gone["summary"].startswith("not running: its timer process is gone")


@pytest.mark.parametrize(
    "value, ok", [("off", True), ("OFF", True), ("30", True), ("0", False), ("10081", False), ("soon", False)]
)
def test_the_minutes_argument(tmp_path, value, ok):
    from cluster_tools.cli import cli

    result = CliRunner().invoke(
        cli, ["autostop", "-c", "nowhere", value], env={"CLUSTERTOOLS_STATE_DIR": str(tmp_path)}
    )
    if ok:  # a valid argument: the command goes on, to the cluster it cannot find
        assert result.exit_code == 1 and "Error: no cluster named 'nowhere'" in result.output, result.output
    else:
        assert result.exit_code == 2 and "MINUTES|off" in result.output


def test_describe_reads_a_parallelcluster_head_nodes_autostop_only_when_armed(tmp_path, monkeypatch, fake_ssh):
    from cluster_tools.services.clusters import describe as describe_service
    from cluster_tools.services.remote.autostop_control import set_autostop
    from cluster_tools.store.cluster_store import save_cluster
    from cluster_tools.transport import pcluster as pc

    state = StateDir(tmp_path / "state")
    save_cluster(state, pc_record(tmp_path))
    head = pc.Instance("i-0123456789abcdef0", "t3.medium", "running", "10.0.0.5", node_type="HeadNode")
    monkeypatch.setattr(
        describe_service,
        "describe_parallelcluster",
        lambda name, region, record=None: describe_service.Description(
            name=name, provider="parallelcluster", address=None, status="CREATE_COMPLETE", region=region, head_node=head
        ),
    )
    reads = []
    monkeypatch.setattr(
        describe_service, "_autostop_of", lambda state, record: reads.append(record.name) or ({"summary": "off"}, None)
    )
    assert describe_service.describe(state, "study", None).autostop is None and reads == [], "not armed: no SSH"
    set_autostop(state, pc_record(tmp_path), None, 30)
    assert describe_service.describe(state, "study", None).autostop == {"summary": "off"} and reads == ["study"]
    head = pc.Instance("i-0123456789abcdef0", "t3.medium", "stopped", None, node_type="HeadNode")
    assert describe_service.describe(state, "study", None).autostop is None and reads == ["study"], "head stopped"
