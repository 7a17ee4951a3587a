"""The idle autostop (bootstrap/autostop.sh), driven as bash with stand-in executables first on PATH.

squeue, ps, aws, shutdown, sinfo, scontrol, systemctl and logger are small scripts that print what the test
put in files (the queue, the process table, the fleet status) and record their arguments in ``calls.log``.
The clock is CT_AUTOSTOP_NOW (epoch seconds), so "idle for a minute" takes no minute here. The stand-in
aws keeps the compute fleet status in a file: update-item writes STOP_REQUESTED, and the next get-item says
STOPPED (what ParallelCluster's clusterstatusmgtd does on the head node in between).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bootstrap" / "autostop.sh"
T0 = 1_700_000_000
ROLE = "arn:aws:iam::123456789012:role/clustertools-down"

RECORD = 'printf "%s\\n" "$(basename "$0") $*" >> "$CT_TEST/calls.log"\n'
STANDINS = {
    "logger": 'printf "%s\\n" "$*" >> "$CT_TEST/syslog.log"\n',
    "squeue": RECORD + '[ ! -f "$CT_TEST/squeue.fail" ] || '
    '{ echo "slurm_load_jobs error: Unable to contact slurm controller"; exit 1; }\n'
    'cat "$CT_TEST/squeue.out" 2>/dev/null || true\n',
    "ps": 'cat "$CT_TEST/ps.out"\n',
    "shutdown": RECORD,
    "systemctl": RECORD,
    "sinfo": "echo compute\n",
    "scontrol": RECORD,
    "aws": RECORD
    + """
case "$1 $2" in
  "dynamodb get-item") [ ! -f "$CT_TEST/fleet.fail" ] || { echo "AccessDenied" >&2; exit 254; }
      s=$(cat "$CT_TEST/fleet"); [ "$s" = STOP_REQUESTED ] && echo STOPPED > "$CT_TEST/fleet"; echo "$s" ;;
  "dynamodb update-item") echo STOP_REQUESTED > "$CT_TEST/fleet" ;;
  "cloudformation delete-stack") ;;
  *) exit 64 ;;
esac
""",
}
# A process table: sshd listener 100, an exec session without a terminal (`clustertools status`), and this
# check itself (no terminal either).
PS_BASE = """\
    1     0 ?        init
  100     1 ?        sshd
  200   100 ?        sshd
  201   200 ?        bash
  300     1 ?        bash
"""
PTY_SESSION = """\
  400   100 ?        sshd
  401   400 ?        sshd
  402   401 pts/0    bash
  403   402 pts/0    vim
"""


@dataclass
class Node:
    tmp: Path

    def __post_init__(self) -> None:
        (self.tmp / "bin").mkdir()
        for name, body in STANDINS.items():
            path = self.tmp / "bin" / name
            path.write_text("#!/bin/sh\n" + body)
            path.chmod(0o755)
        (self.tmp / "ps.out").write_text(PS_BASE)
        (self.tmp / "fleet").write_text("RUNNING\n")
        (self.tmp / "runs").mkdir()
        (self.tmp / "cfnconfig").write_text("stack_name=study\ncfn_region=us-east-1\ncfn_node_type=HeadNode\n")

    def run(self, *args: str, now: int = T0, boot: int = T0 - 86400, env: dict | None = None):
        full_env = {
            "PATH": f"{self.tmp / 'bin'}:/usr/bin:/bin",
            "CT_TEST": str(self.tmp),
            "CT_AUTOSTOP_DIR": str(self.tmp / "state"),
            "CT_AUTOSTOP_NOW": str(now),
            "CT_AUTOSTOP_BOOT_EPOCH": str(boot),
            "CT_AUTOSTOP_POLL": "0",
            "CT_CFNCONFIG": str(self.tmp / "cfnconfig"),
            "CT_SYSTEMD_DIR": str(self.tmp / "no-systemd"),
            **(env or {}),
        }
        return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=60)

    def configure(self, *args: str, **kwargs) -> str:
        result = self.run(
            "--configure", "--log", str(self.log_file), "--runs-dirs", str(self.tmp / "runs"), *args, **kwargs
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def check(self, now: int, **kwargs) -> dict:
        result = self.run("--once", now=now, **kwargs)
        assert result.returncode == 0, result.stdout + result.stderr
        return self.status()

    def status(self) -> dict:
        return json.loads((self.tmp / "state" / "status.json").read_text())

    @property
    def log_file(self) -> Path:
        return self.tmp / "log" / "autostop.log"

    def calls(self) -> list[str]:
        path = self.tmp / "calls.log"
        return [c for c in path.read_text().splitlines() if not c.startswith("squeue")] if path.exists() else []

    def marker(self, name: str = "sub-01.1", mtime: int = T0, text: str = "job=7_1 slurm_conf=\n") -> Path:
        """An upload marker as the run wrapper writes it."""
        path = self.tmp / "runs" / "run-1" / "uploading" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (mtime, mtime))  # on the test's clock (CT_AUTOSTOP_NOW)
        return path


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_idle_for_the_limit_fires_once_stopping_the_fleet_then_the_head_node(node: Node):
    node.configure("--minutes", "1")
    assert node.status()["decision"] == "armed"
    first = node.check(T0)
    assert first["decision"] == "idle" and first["idle_since_epoch"] == T0 and first["fires_at_epoch"] == T0 + 60
    assert node.check(T0 + 59)["decision"] == "idle" and node.calls() == []
    fired = node.check(T0 + 60)
    assert fired["decision"] == "fired" and fired["fired_at_epoch"] == T0 + 60 and fired["action_exit"] == 0
    calls = node.calls()
    # Read RUNNING, request the stop, wait until clusterstatusmgtd says STOPPED, then stop the head node.
    assert [c.split()[:3] for c in calls] == [
        ["aws", "dynamodb", "get-item"],
        ["aws", "dynamodb", "update-item"],
        ["aws", "dynamodb", "get-item"],
        ["aws", "dynamodb", "get-item"],
        ["shutdown", "-h", "now"],
    ]
    assert "--table-name parallelcluster-study" in calls[1] and '"S":"STOP_REQUESTED"' in calls[1]
    assert '":current":{"S":"RUNNING"}' in calls[1]
    # A second firing (the timer keeps running until the node is down) repeats nothing.
    again = node.check(T0 + 120)
    assert again["decision"] == "fired" and node.calls() == calls
    log = node.log_file.read_text()
    assert "FIRING: idle since" in log and "action stop done" in log and "already fired at" in log
    assert all(line[:4].isdigit() and "clustertools-autostop[study]" in line for line in log.splitlines())
    assert "FIRING" in (node.tmp / "syslog.log").read_text()


@pytest.mark.parametrize(
    "queue, reason",
    [
        ("RUNNING\n", "1 job running"),
        ("PENDING\nPENDING\nPENDING\n", "3 jobs pending"),
        ("COMPLETING\n", "1 job completing"),
        ("CONFIGURING\n", "1 job configuring"),
        ("SUSPENDED\nCOMPLETED\n", "1 job suspended"),
    ],
)
def test_a_job_not_finished_keeps_it_from_firing(node: Node, queue: str, reason: str):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text(queue)
    for minute in range(5):
        status = node.check(T0 + 60 * minute)
        assert status["decision"] == "busy" and status["idle_since"] is None and status["reasons"] == [reason]
    assert node.calls() == []
    assert f"busy: {reason} (limit 1 min)" in node.log_file.read_text()
    # The last task ends: the idle clock starts then, and it fires a minute later.
    (node.tmp / "squeue.out").write_text("COMPLETED\nFAILED\nCANCELLED\n")
    assert node.check(T0 + 300)["idle_since_epoch"] == T0 + 300
    assert node.check(T0 + 359)["decision"] == "idle"
    assert node.check(T0 + 360)["decision"] == "fired"


def test_squeue_failing_counts_as_busy(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.fail").touch()
    status = node.check(T0)
    node.check(T0 + 120)
    assert node.status()["decision"] == "busy" and "squeue failed (slurm_load_jobs error" in status["reasons"][0]
    assert node.calls() == []


def test_an_interactive_ssh_session_keeps_it_from_firing_an_exec_does_not(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "ps.out").write_text(PS_BASE + PTY_SESSION)
    assert node.check(T0)["busy"]["ssh_sessions"] == 1
    status = node.check(T0 + 600)
    assert status["decision"] == "busy" and status["reasons"] == ["1 SSH session open"]
    (node.tmp / "ps.out").write_text(PS_BASE)  # only the exec session without a terminal is left
    assert node.check(T0 + 601)["decision"] == "idle"


def test_with_the_sandboxs_sshd_only_its_sessions_count(node: Node):
    node.configure("--minutes", "1", "--sshd-pid", "100")
    other_server = PTY_SESSION.replace("  400   100", "  400   900")  # a session of another sshd (pid 900)
    (node.tmp / "ps.out").write_text(PS_BASE + "  900     1 ?        sshd\n" + other_server)
    assert node.check(T0)["busy"]["ssh_sessions"] == 0
    (node.tmp / "ps.out").write_text(PS_BASE + PTY_SESSION)
    assert node.check(T0 + 1)["busy"]["ssh_sessions"] == 1


def test_a_pending_upload_counts_while_its_job_runs_a_marker_older_than_stale_hours_does_not(node: Node):
    node.configure("--minutes", "1", "--stale-hours", "6")
    (node.tmp / "squeue.out").write_text("RUNNING 7_1\n")
    marker = node.marker()
    status = node.check(T0 + 600)
    node.check(T0 + 1200)
    assert node.status()["decision"] == "busy" and status["reasons"] == ["1 job running", "1 upload pending"]
    marker.unlink()
    stale = node.marker("sub-02.1", mtime=T0 + 1300 - 7 * 3600)  # its job still runs: the 6 h backstop says stale
    status = node.check(T0 + 1300)
    assert status["reasons"] == ["1 job running"] and status["busy"]["uploads"] == 0
    assert status["busy"]["stale_uploads"] == 1
    assert (
        f"1 upload marker ignored (older than the node's start, 2023-11-13T22:13:20Z, or 6 h): {stale}"
        in node.log_file.read_text()
    )
    (node.tmp / "squeue.out").write_text("COMPLETED 7_1\n")
    assert node.check(T0 + 1360)["decision"] == "idle"
    assert node.check(T0 + 1420)["decision"] == "fired"


def test_a_marker_whose_job_is_not_in_squeue_does_not_keep_it_busy(node: Node):
    """The task's node died mid-upload: the marker stays behind, its job is gone (or finished, still listed
    for MinJobAge). It must not hold the cluster up for STALE_HOURS."""
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text("COMPLETED 8_1\n")
    gone = node.marker("sub-01.1", text="job=7_1 slurm_conf=\n")
    node.marker("sub-02.1", text="job=8_1 slurm_conf=\n")
    status = node.check(T0)
    assert status["decision"] == "idle" and status["busy"]["uploads"] == 0 and status["busy"]["stale_uploads"] == 2
    assert f"2 upload markers ignored (job finished or not in squeue): {gone} and 1 more" in node.log_file.read_text()
    assert node.check(T0 + 60)["decision"] == "fired"


@pytest.mark.parametrize(
    "queue, job, counted",
    [
        ("RUNNING 7_1\n", "7_1", True),
        ("PENDING 7_1\n", "7_1", True),  # requeued after its node failed: it uploads again when it runs
        ("RUNNING 5\n", "5", True),  # a job that is not an array task
        ("RUNNING 7_10\nRUNNING 17_1\nRUNNING 7\n", "7_1", False),  # ids compared whole, as strings
        ("RUNNING 7_1\n", "7_1x", False),
        ("RUNNING 7_1\n", "", False),
    ],
)
def test_a_marker_counts_exactly_when_squeue_lists_its_job_unfinished(node: Node, queue: str, job: str, counted: bool):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text(queue)
    node.marker(text=f"job={job} slurm_conf=\n")
    status = node.check(T0)
    assert (status["busy"]["uploads"], status["busy"]["stale_uploads"]) == ((1, 0) if counted else (0, 1))
    assert ("1 upload pending" in status["reasons"]) is counted


def test_job_ids_in_markers_are_data(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text("RUNNING 7_1\n")
    pwned = node.tmp / "pwned"
    for i, job in enumerate([f"$(touch {pwned})", f"`touch {pwned}`", f"7_1[$(touch {pwned})]", "7_1]", "x[0]"]):
        node.marker(f"sub-{i}.1", text=f"job={job} slurm_conf=\n")
    status = node.check(T0)
    assert status["busy"]["uploads"] == 0 and status["busy"]["stale_uploads"] == 5 and not pwned.exists()


def test_one_squeue_call_per_check_judges_jobs_and_markers(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text("RUNNING 7_1\n")
    node.marker()
    node.check(T0)
    calls = [c for c in (node.tmp / "calls.log").read_text().splitlines() if c.startswith("squeue")]
    assert calls == ["squeue -h -a -r -t all -o %T %i"]


def test_when_squeue_fails_a_marker_counts(node: Node):
    """Its job cannot be looked up: as before, the marker counts (the check is busy anyway)."""
    node.configure("--minutes", "1")
    (node.tmp / "squeue.fail").touch()
    node.marker()
    status = node.check(T0)
    assert status["busy"]["uploads"] == 1 and status["reasons"][-1] == "1 upload pending"


def test_a_marker_older_than_the_nodes_start_is_an_orphan(node: Node):
    """Its task was killed with the node (a stop, a spot interruption of the head node): it uploads nothing."""
    node.configure("--minutes", "1")
    node.marker(mtime=T0 - 200)
    status = node.check(T0, boot=T0 - 100)
    assert status["decision"] == "idle" and status["busy"]["stale_uploads"] == 1
    (node.tmp / "squeue.out").write_text("RUNNING 7_1\n")
    node.marker("sub-02.1", mtime=T0 - 50)
    assert node.check(T0 + 1, boot=T0 - 100)["reasons"] == ["1 job running", "1 upload pending"]


def test_with_a_slurm_conf_only_that_slurms_markers_count(node: Node):
    """Sandboxes of one user share a home, so each counts only its own jobs' markers."""
    node.configure("--minutes", "1", "--slurm-conf", "/sandbox-a/etc/slurm.conf", "--node-started", str(T0 - 100))
    node.marker("other.1", text="job=3 slurm_conf=/sandbox-b/etc/slurm.conf\n")
    node.marker("orphan.1", mtime=T0 - 200, text="job=4 slurm_conf=/sandbox-a/etc/slurm.conf\n")
    status = node.check(T0, boot=0)
    assert status["decision"] == "idle" and status["busy"]["uploads"] == 0 and status["busy"]["stale_uploads"] == 1
    (node.tmp / "squeue.out").write_text("RUNNING 5\n")
    node.marker("mine.1", text="job=5 slurm_conf=/sandbox-a/etc/slurm.conf\n")
    assert node.check(T0 + 1, boot=0)["reasons"] == ["1 job running", "1 upload pending"]


def test_all_reasons_at_once_are_listed(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "squeue.out").write_text("RUNNING 7_1\nRUNNING 7_2\nPENDING 7_3\n")
    (node.tmp / "ps.out").write_text(PS_BASE + PTY_SESSION)
    node.marker("a.1")
    node.marker("b.1", text="job=7_2 slurm_conf=\n")
    status = node.check(T0)
    assert status["reasons"] == ["1 job pending", "2 jobs running", "1 SSH session open", "2 uploads pending"]
    assert status["busy"] == {"jobs": {"pending": 1, "running": 2}, "ssh_sessions": 1, "uploads": 2, "stale_uploads": 0}


def test_off_checks_nothing_and_fires_never(node: Node):
    node.configure("--minutes", "1")
    node.check(T0)
    node.configure("--minutes", "off")
    assert node.check(T0 + 3600)["decision"] == "off" and node.calls() == []
    assert node.status()["minutes"] is None


def test_a_gap_in_checks_restarts_the_idle_clock(node: Node):
    node.configure("--minutes", "10", "--interval", "60")
    node.check(T0)
    status = node.check(T0 + 3600)  # no check for an hour (the timer was stopped): nothing was observed
    assert status["decision"] == "idle" and status["idle_since_epoch"] == T0 + 3600
    assert "the idle clock restarts" in node.log_file.read_text()


def test_a_failed_action_is_reported_and_not_repeated(node: Node):
    node.configure("--minutes", "1")
    (node.tmp / "fleet.fail").touch()
    node.check(T0)
    assert node.check(T0 + 60)["decision"] == "failed" and node.status()["action_exit"] == 1
    assert node.check(T0 + 120)["decision"] == "failed"
    assert [c.split()[:3] for c in node.calls()] == [["aws", "dynamodb", "get-item"]]
    assert "action stop FAILED (exit 1)" in node.log_file.read_text()


def test_an_already_stopped_fleet_is_not_requested_again(node: Node):
    (node.tmp / "fleet").write_text("STOPPED\n")
    node.configure("--minutes", "1")
    node.check(T0)
    node.check(T0 + 60)
    assert [c.split()[:3] for c in node.calls()] == [["aws", "dynamodb", "get-item"], ["shutdown", "-h", "now"]]


def test_down_deletes_the_stack_with_the_given_role(node: Node):
    node.configure("--minutes", "1", "--action", "down", "--down-role-arn", ROLE)
    node.check(T0)
    assert node.check(T0 + 60)["decision"] == "fired"
    last = node.calls()[-1]
    assert last == f"aws cloudformation delete-stack --region us-east-1 --stack-name study --role-arn {ROLE}"
    assert not any(c.startswith("shutdown") for c in node.calls())


def test_the_sandbox_action_sets_partitions_inactive_and_rearming_resumes_them(node: Node):
    node.configure("--minutes", "1", "--action", "sandbox", "--no-timer")
    node.check(T0)
    node.check(T0 + 60)
    assert node.calls() == ["scontrol update PartitionName=compute State=INACTIVE"]
    assert "not stopped (clustertools sandbox down stops it)" in node.log_file.read_text()
    node.configure("--minutes", "1", "--no-timer")
    assert node.calls()[-1] == "scontrol update PartitionName=compute State=UP"
    assert node.status()["decision"] == "armed" and node.status()["timer"] == "loop"


def test_a_restart_of_the_node_after_firing_rearms_it(node: Node):
    node.configure("--minutes", "1")
    node.check(T0)
    node.check(T0 + 60)
    status = node.check(T0 + 3600, boot=T0 + 3000)  # the user started the head node again
    assert status["decision"] == "idle" and status["fired_at"] is None
    assert "re-armed" in node.log_file.read_text()


def test_a_big_log_is_rotated(node: Node):
    node.configure("--minutes", "10")
    node.log_file.write_text("x" * 5_000_001)
    node.check(T0)
    assert (node.tmp / "log" / "autostop.log.1").stat().st_size == 5_000_001
    assert "idle since" in node.log_file.read_text() and node.log_file.stat().st_size < 1000
