"""`clustertools ssh` against the real sandbox: Slurm answers, exit codes and bytes pass through,
host keys are pinned at first contact and a changed key is refused."""

from __future__ import annotations

import json
import shutil
import subprocess

from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from tests.helpers import err, out


def test_sinfo_prints_the_partition(sandbox):
    result = sandbox.cli("ssh", "-c", "sandbox", "--", "sinfo")
    assert result.returncode == 0, err(result)
    assert "compute*" in out(result) and "idle" in out(result)


def test_the_remote_exit_code_is_ours(sandbox):
    assert sandbox.cli("ssh", "-c", "sandbox", "--", "sh", "-c", "exit 3").returncode == 3
    assert sandbox.cli("ssh", "--", "false").returncode == 1  # the only known cluster is the default


def test_hostile_words_arrive_verbatim(sandbox):
    words = ["a;rm -rf ~", "$(id)", "`id`", "x y", "quote'n\"dq", "line1\nline2", "tab\there", "*", "~", ""]
    result = sandbox.cli("ssh", "--", "printf", "%s\\0", *words)
    assert result.returncode == 0, err(result)
    assert result.stdout.split(b"\0")[:-1] == [w.encode() for w in words]


def test_stdout_and_stderr_stay_apart_and_stdin_is_forwarded(sandbox):
    result = sandbox.cli("ssh", "--", "sh", "-c", "cat; echo oops >&2", input=b"from stdin\r\nline 2\n")
    assert result.stdout == b"from stdin\r\nline 2\n" and result.stderr == b"oops\n"


def test_large_output_streams_whole(sandbox):
    result = sandbox.cli("ssh", "--", "head", "-c", "3000000", "/dev/zero")
    assert result.returncode == 0 and len(result.stdout) == 3_000_000


def test_the_node_has_slurm_and_the_s3_endpoint(sandbox):
    # As on ParallelCluster: Slurm is found in /opt/slurm/bin through the login shell's profile.d, and no
    # SLURM_CONF is set: Slurm reads /opt/slurm/etc as it was built to (here /etc/slurm points there).
    result = sandbox.cli(
        "ssh",
        "--",
        "sh",
        "-c",
        'echo "$(command -v scontrol)|${SLURM_CONF-unset}|$AWS_ENDPOINT_URL"; scontrol show config',
    )
    first, _, config = out(result).partition("\n")
    assert first == f"/opt/slurm/bin/scontrol|unset|{sandbox.status['s3_endpoint_url']}"
    assert "MinJobAge               = 10 sec" in config and "MaxArraySize            = 1001" in config


def test_up_twice_reports_the_running_sandbox(sandbox):
    again = sandbox.cli("sandbox", "up", "--json")
    assert again.returncode == 0 and "already running" in err(again)

    def pids(status: dict) -> list[int]:
        return [c["pid"] for c in status["components"]]

    assert pids(json.loads(out(again))) == pids(sandbox.status)


def test_status_says_what_runs_where(sandbox):
    result = sandbox.cli("sandbox", "status", "--json")
    status = json.loads(out(result))
    assert result.returncode == 0 and status["running"]
    assert [c["name"] for c in status["components"]] == ["munged", "head", "slurmctld", "sshd", "s3", "registry"]
    assert all(c["running"] and c["address"] for c in status["components"])
    assert status["registry"].startswith("127.0.0.1:") and len(status["images"]) == 2
    table = sandbox.cli("sandbox", "status")
    assert "slurmctld" in out(table) and "running" in out(table)
    assert f"docker://{status['registry']}/sandbox/tools:1.0" in out(table)


def test_the_s3_endpoint_serves_the_sandbox_bucket(sandbox):
    from cluster_tools.transport.s3 import S3Target, make_s3_client

    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    client.put_object(Bucket="clustertools-sandbox", Key="probe.txt", Body=b"hello")
    assert client.get_object(Bucket="clustertools-sandbox", Key="probe.txt")["Body"].read() == b"hello"


def test_register_pins_the_host_key_at_first_contact_and_refuses_a_changed_one(sandbox, tmp_path):
    """The path a user takes for a university cluster, pointed at the sandbox's sshd."""
    state = tmp_path / "state"
    state.mkdir()
    rec = sandbox.record
    dest = f"{rec.user}@{rec.host}:{rec.port}"
    reg = sandbox.cli("register", "uni", dest, "-i", str(rec.identity_file), env={"CLUSTERTOOLS_STATE_DIR": str(state)})
    assert reg.returncode == 0, err(reg)
    assert "first contact" in err(reg) and "SHA256:" in err(reg)
    pinned = load_cluster(StateDir(state), "uni").known_hosts
    assert pinned.read_text().split()[1:] == sandbox.record.known_hosts.read_text().split()[1:]

    def ssh_uni(*args):
        return sandbox.cli("ssh", "-c", "uni", "--", *args, env={"CLUSTERTOOLS_STATE_DIR": str(state)})

    assert ssh_uni("true").returncode == 0 and "first contact" not in err(ssh_uni("true"))

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    host = pinned.read_text().split()[0]
    pinned.write_text(f"{host} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n")
    refused = ssh_uni("touch", str(tmp_path / "must-not-exist"))
    assert refused.returncode == 1
    assert err(refused).startswith("Error: host key of") and "changed" in err(refused)
    assert not (tmp_path / "must-not-exist").exists()


def test_openssh_trusts_the_same_pinned_key(sandbox):
    """The pinned known_hosts file is standard: OpenSSH's client accepts it with strict checking."""
    if not shutil.which("ssh"):
        return
    rec = sandbox.record
    result = subprocess.run(
        [
            "ssh",
            "-p",
            str(rec.port),
            "-i",
            str(rec.identity_file),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={rec.known_hosts}",
            f"{rec.user}@{rec.host}",
            "true",
        ],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_captured_output_is_read_to_the_end_every_time(sandbox):
    """OpenSSH may send the exit status before the last data: reading must go on to EOF."""
    from cluster_tools.services.remote.cluster_shell import connect

    with connect(sandbox.record) as conn:
        sizes = {len(conn.run(["head", "-c", "1500000", "/dev/zero"]).stdout) for _ in range(15)}
        assert sizes == {1_500_000}
        assert conn.run(["sh", "-c", "head -c 70000 /dev/zero; exit 4"]).exit_code == 4
