"""Interactive work against the real sandbox, driven through a real terminal (a pty): a shell on the
head node and on a compute node, ssh-config used by OpenSSH's own client, `debug SUBJECT` on a compute
node, put/get over SFTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.helpers import err, out, run_cli
from tests.integration.pty_helpers import Terminal
from tests.integration.run_helpers import make_project, states, submit, wait_for_run, write_subjects

needs_openssh = pytest.mark.skipif(not shutil.which("ssh"), reason="OpenSSH's client is not installed")


def private_copy(sandbox, tmp_path: Path) -> Path:
    """A state dir that knows the sandbox under the same name, with its own copy of the pinned keys:
    tests that pin node keys or change a key must not touch the shared sandbox's file."""
    state = tmp_path / "state"
    state.mkdir()
    known_hosts = state / "sandbox.known_hosts"
    shutil.copy(sandbox.record.known_hosts, known_hosts)
    save_cluster(StateDir(state), sandbox.record.model_copy(update={"known_hosts": known_hosts}))
    return state


def another_key(tmp_path: Path) -> str:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def squeue_names(sandbox) -> list[str]:
    result = sandbox.cli("ssh", "--", "squeue", "-h", "-o", "%j")
    assert result.returncode == 0, err(result)
    return out(result).split()


def wait_until_no_debug_job(sandbox, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(name.startswith("ctdebug") for name in squeue_names(sandbox)):
        assert time.monotonic() < deadline, f"an allocation is left: {squeue_names(sandbox)}"
        time.sleep(0.5)


# --- clustertools ssh: a real shell ---------------------------------------------------------------


def test_the_shell_has_a_pty_follows_the_window_and_returns_the_exit_status(sandbox):
    with Terminal("ssh", "-c", "sandbox", state=sandbox.state, columns=100, rows=30) as term:
        term.send("tty; stty size\r")
        term.expect(r"/dev/pts/\d+")
        term.expect(r"30 100")
        during = termios.tcgetattr(term.master)  # the local terminal's modes (a pty pair shares them)
        term.resize(132, 41)
        time.sleep(0.3)
        term.send("stty size\r")
        term.expect(r"41 132")
        term.send("exit 7\r")
        assert term.wait() == 7
        after = termios.tcgetattr(term.master)
    assert not during[3] & (termios.ECHO | termios.ICANON | termios.ISIG), "raw while the session runs"
    assert after[3] & termios.ECHO and after[3] & termios.ICANON and after[3] & termios.ISIG, "restored at the end"


def test_ctrl_c_goes_to_the_remote_side(sandbox):
    with Terminal("ssh", state=sandbox.state) as term:
        term.send("sleep 30; echo after-sleep\r")
        time.sleep(1)
        term.send("\x03")  # interrupts the remote sleep, not clustertools
        term.send("echo still-here; exit 4\r")
        term.expect("still-here")
        assert term.wait() == 4
    assert b"after-sleep" not in term.transcript.replace(b"echo after-sleep", b"")


def test_without_a_terminal_the_shell_reads_stdin_and_says_so_once(sandbox):
    result = sandbox.cli("ssh", input=b'tty; echo "from $((6 * 7))"; exit 3\n')
    assert result.returncode == 3
    assert out(result) == "not a tty\nfrom 42\n"
    assert err(result).count("stdin is not a terminal") == 1


def test_t_gives_a_command_a_pty(sandbox):
    with Terminal("ssh", "-t", "--", "sh", "-c", "tty; exit 5", state=sandbox.state) as term:
        assert term.wait() == 5
    assert b"/dev/pts/" in term.transcript


# --- --node: through the head node to a compute node ----------------------------------------------


def test_a_node_is_reached_through_the_head_node_and_its_key_pinned(sandbox, tmp_path):
    state = private_copy(sandbox, tmp_path)
    with Terminal("ssh", "--node", "compute-st-compute-1", state=state) as term:  # a node of the sandbox
        term.expect(r"first contact with \[compute-st-compute-1\]:\d+: pinned its host key ssh-ed25519 SHA256:")
        term.send('echo "on $(hostname) $(command -v sinfo)"; tty; exit 6\r')  # the node's own sshd, a login shell
        term.expect(r"on compute-st-compute-1 /opt/slurm/bin/sinfo")
        term.expect(r"/dev/pts/\d+")
        assert term.wait() == 6
    known = (state / "sandbox.known_hosts").read_text()
    assert f"[compute-st-compute-1]:{sandbox.record.port} ssh-ed25519" in known

    again = run_cli("ssh", "--node", "compute-st-compute-1", "--", "hostname", state=state)
    assert again.returncode == 0 and "first contact" not in err(again)

    lines = [line for line in known.splitlines() if not line.startswith("[compute-st-compute-1]")]
    (state / "sandbox.known_hosts").write_text(
        "\n".join([*lines, f"[compute-st-compute-1]:{sandbox.record.port} {another_key(tmp_path)}"]) + "\n"
    )
    refused = run_cli(
        "ssh", "--node", "compute-st-compute-1", "--", "touch", str(tmp_path / "must-not-exist"), state=state
    )
    assert refused.returncode == 1 and err(refused).startswith("Error: host key of") and "changed" in err(refused)
    assert f"ssh-keygen -R '[compute-st-compute-1]:{sandbox.record.port}'" in err(refused)
    assert not (tmp_path / "must-not-exist").exists()


def test_an_unknown_node_is_one_line(sandbox):
    result = sandbox.cli("ssh", "--node", "no-such-node", "--", "true")
    assert result.returncode == 1 and "cannot open a connection to no-such-node" in err(result)
    assert len(err(result).strip().splitlines()) == 1


# --- ssh-config: OpenSSH's own client ------------------------------------------------------------


@needs_openssh
def test_openssh_reaches_the_head_node_with_the_printed_block_and_strict_checking(sandbox, tmp_path):
    # OpenSSH closes every inherited descriptor above 2 before reading -F, so `ssh -F <(...)` cannot
    # work with any tool; the same block through stdin or a file does.
    env = {**os.environ, "CLUSTERTOOLS_STATE_DIR": str(sandbox.state)}
    piped = subprocess.run(
        [
            "bash",
            "-c",
            'ssh -F /dev/stdin -o BatchMode=yes sandbox echo piped-ok < <("$@" ssh-config -c sandbox)',
            "bash",
            sys.executable,
            "-m",
            "cluster_tools",
        ],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout == b"piped-ok\n", piped.stderr
    config = tmp_path / "config"
    config.write_bytes(sandbox.cli("ssh-config", "-c", "sandbox", "--no-nodes").stdout)
    assert "StrictHostKeyChecking yes" in config.read_text()
    result = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "sandbox", "true"], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_ssh_config_into_a_closed_pipe_is_quiet(sandbox):
    result = subprocess.run(
        ["bash", "-c", '"$@" ssh-config --no-nodes | true', "bash", sys.executable, "-m", "cluster_tools"],
        env={**os.environ, "CLUSTERTOOLS_STATE_DIR": str(sandbox.state)},
        capture_output=True,
        timeout=60,
    )
    assert b"Error" not in result.stderr and b"Traceback" not in result.stderr


@needs_openssh
def test_openssh_with_the_block_reaches_a_node_and_refuses_a_changed_key(sandbox, tmp_path):
    state = private_copy(sandbox, tmp_path)
    printed = run_cli("ssh-config", state=state)
    assert printed.returncode == 0, err(printed)
    config = tmp_path / "ssh_config"
    config.write_bytes(printed.stdout)
    text = out(printed)
    assert (
        "StrictHostKeyChecking yes" in text
        and "ProxyJump sandbox" in text
        and "Host compute-st-compute-1.sandbox" in text
    )

    def openssh(host: str, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-F", str(config), "-o", "BatchMode=yes", host, *command], capture_output=True, timeout=60
        )

    assert openssh("sandbox", "true").returncode == 0
    node = openssh("compute-st-compute-1.sandbox", "echo", "node-ok")
    assert node.returncode == 0 and node.stdout == b"node-ok\n", node.stderr
    assert f"[compute-st-compute-1]:{sandbox.record.port}" in (state / "sandbox.known_hosts").read_text()

    head_line = next(
        line
        for line in (state / "sandbox.known_hosts").read_text().splitlines()
        if line.startswith(f"[{sandbox.record.host}]")
    )
    pinned = (state / "sandbox.known_hosts").read_text()
    (state / "sandbox.known_hosts").write_text(
        pinned.replace(head_line, f"{head_line.split()[0]} {another_key(tmp_path)}")
    )
    refused = openssh("sandbox", "touch", str(tmp_path / "must-not-exist"))
    assert refused.returncode == 255 and b"Host key verification failed" in refused.stderr
    assert not (tmp_path / "must-not-exist").exists()


@needs_openssh
def test_write_puts_the_block_in_the_ssh_config_once(sandbox, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  StrictHostKeyChecking no\n  User nobody-else\n")
    first = sandbox.cli("ssh-config", "--write", "--no-nodes", env={"HOME": str(home)})
    assert first.returncode == 0 and "wrote" in err(first), err(first)
    second = sandbox.cli("ssh-config", "--write", "--no-nodes", env={"HOME": str(home)})
    assert second.returncode == 0 and "already up to date" in err(second)
    text = (home / ".ssh" / "config").read_text()
    assert text.count("Host sandbox") == 1 and text.endswith("Host *\n  StrictHostKeyChecking no\n  User nobody-else\n")
    result = subprocess.run(
        ["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", "sandbox", "id", "-un"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.decode().strip() == sandbox.record.user, result.stderr


# --- debug SUBJECT --------------------------------------------------------------------------------


def test_debug_a_failed_subject_stands_where_its_task_stood_and_frees_the_node(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "dbg")
    config = project / "clustertools.yaml"
    config.write_text(
        re.sub(r"(?m)^  # input: .*$", "  input: s3://clustertools-sandbox/dbg-inputs", config.read_text())
    )
    assert "\n  input: s3://clustertools-sandbox/dbg-inputs\n" in config.read_text()
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    for subject in ("ok-1", "bad-2"):
        client.put_object(Bucket="clustertools-sandbox", Key=f"dbg-inputs/{subject}/T1 w.nii", Body=subject.encode())
    command = 'ls "$INPUT_DIR"; [ "$SUBJECT" != bad-2 ] || { echo "cannot segment" >&2; exit 5; }'
    run_id = submit(
        sandbox, project, str(write_subjects(project, ["ok-1", "bad-2"])), "--command", command, "--mem", "100M"
    )["run"]
    assert states(wait_for_run(sandbox, project, run_id))["bad-2"] == ("FAILED", 5, 1)

    with Terminal("debug", "--run", run_id, "bad-2", state=sandbox.state, cwd=project) as term:
        first = term.expect(r"[^\r\n]+\r\n").group(0)
        assert first == f"clustertools debug: the command the task ran: {command}\r\n"
        term.expect(r"\(debug bad-2\)")
        assert any(n.startswith("ctdebug-") for n in squeue_names(sandbox)), "the shell is a Slurm job"
        term.send(
            'echo "S=$SUBJECT"; ls "$INPUT_DIR"; echo "tty=$(tty)"; '
            'scontrol show job "$SLURM_JOB_ID" | grep -o "MinMemoryNode=[^ ]*\\|TimeLimit=[^ ]*"; exit\r'
        )
        term.expect(r"S=bad-2\r\n")
        term.expect(r"T1 w\.nii")
        term.expect(r"tty=/dev/pts/\d+")
        term.expect(r"TimeLimit=00:10:00")  # the run's resources (the project's job.time)
        term.expect(r"MinMemoryNode=100M")
        assert term.wait() == 0
    wait_until_no_debug_job(sandbox)
    # without a terminal: no pty, the shell reads its commands from stdin, its exit status is ours
    piped = sandbox.cli("debug", "--run", run_id, "bad-2", input=b'echo "S=$SUBJECT"; ls "$INPUT_DIR"; exit 3\n')
    assert piped.returncode == 3 and "S=bad-2\nT1 w.nii\n" in out(piped), err(piped)
    assert "stdin is not a terminal" in err(piped)
    wait_until_no_debug_job(sandbox)
    # the failed task's record and logs are as they were
    assert states(json.loads(out(sandbox.cli("status", run_id, "--json", cwd=project))))["bad-2"] == ("FAILED", 5, 1)
    assert out(sandbox.cli("logs", run_id, "bad-2", "--stderr", cwd=project)) == "cannot segment\n"


def test_debug_without_a_subject_uses_the_resources_given_and_a_dropped_connection_frees_the_node(sandbox):
    with Terminal("debug", "--cpus", "1", "--mem", "64M", "--time", "5", state=sandbox.state) as term:
        term.send('scontrol show job "$SLURM_JOB_ID" | grep -o "MinMemoryNode=[^ ]*\\|TimeLimit=[^ ]*"\r')
        term.expect(r"TimeLimit=00:05:00")
        term.expect(r"MinMemoryNode=64M")
        assert any(n == "ctdebug" for n in squeue_names(sandbox))
        os.killpg(term.proc.pid, 9)  # the laptop goes away: no `exit` is ever typed
        term.proc.wait()
    wait_until_no_debug_job(sandbox)


def test_debug_exit_status_is_the_shells(sandbox):
    with Terminal("debug", "--mem", "64M", "--time", "5", state=sandbox.state) as term:
        term.send("exit 9\r")
        assert term.wait() == 9
    wait_until_no_debug_job(sandbox)


# --- put / get ------------------------------------------------------------------------------------

ODD_NAMES = ["plain.txt", "a b.txt", 'it\'s "quoted".txt', "$(id);`id`.txt", "-rf"]


def test_put_and_get_copy_files_and_directories_whole_and_refuse_to_overwrite(sandbox, tmp_path):
    tree = tmp_path / "up"
    (tree / "deeper dir").mkdir(parents=True)
    for name in ODD_NAMES:
        (tree / name).write_text(f"content of {name}\n")
    (tree / "deeper dir" / "big.bin").write_bytes(os.urandom(3_000_000))
    remote = f"ct-put-test-{os.getpid()}"
    try:
        single = sandbox.cli("put", str(tree / "a b.txt"), "--json")
        assert single.returncode == 0 and json.loads(out(single))["target"] == "a b.txt", err(single)
        assert out(sandbox.cli("ssh", "--", "cat", "a b.txt")) == "content of a b.txt\n"
        again = sandbox.cli("put", str(tree / "a b.txt"))
        assert again.returncode == 1 and "--force" in err(again)
        assert sandbox.cli("put", str(tree / "a b.txt"), "--force").returncode == 0

        no_r = sandbox.cli("put", str(tree), remote)
        assert no_r.returncode == 1 and "pass -r" in err(no_r)
        up = sandbox.cli("put", "-r", str(tree), f"~/{remote}")
        assert up.returncode == 0 and "6 file(s)" in out(up), err(up)
        listing = sandbox.cli("ssh", "--", "find", remote, "-type", "f", "-printf", "%P\\0")
        assert sorted(listing.stdout.split(b"\0")[:-1]) == sorted(
            [n.encode() for n in ODD_NAMES] + [b"deeper dir/big.bin"]
        )

        down = tmp_path / "down"
        down.mkdir()
        got = sandbox.cli("get", "-r", remote, str(down))
        assert got.returncode == 0, err(got)
        for path in tree.rglob("*"):
            if path.is_file():
                assert (down / remote / path.relative_to(tree)).read_bytes() == path.read_bytes()
        with Terminal("get", f"~/{remote}/deeper dir/big.bin", str(down / "big.bin"), state=sandbox.state) as term:
            assert term.wait() == 0
        assert re.search(rb"\d\.\d/\d\.\d MB", term.transcript), "a progress bar on a terminal"
        assert (down / "big.bin").read_bytes() == (tree / "deeper dir" / "big.bin").read_bytes()
        refused = sandbox.cli("get", "-r", remote, str(down))
        assert refused.returncode == 1 and "already on this machine" in err(refused)
        assert sandbox.cli("get", f"~/{remote}/-rf", str(down / "x.txt")).returncode == 0
        assert (down / "x.txt").read_text() == "content of -rf\n"
    finally:
        sandbox.cli("ssh", "--", "rm", "-rf", remote, "a b.txt")
