"""The output location is checked on the head node before anything is submitted (issue 11, item 7):
the probe script runs here under bash, as the head node would run it, with a stand-in aws."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from cluster_tools.errors import ClusterToolsError
from cluster_tools.services.runs.output_check import check_output_location
from cluster_tools.transport.ssh import RemoteResult, command_line
from tests.unit.run_fixtures import make_run


class LocalHead:
    """Runs what would run on the head node on this machine, with ``bin`` first on PATH."""

    def __init__(self, bin_dir: Path) -> None:
        self.path = f"{bin_dir}:/usr/bin:/bin"
        self.commands: list[list[str]] = []

    def run(self, argv, *, timeout=None, stdin=None):
        self.commands.append(list(argv))
        done = subprocess.run(
            ["/bin/bash", "-c", command_line(argv)], capture_output=True, env={"PATH": self.path}, timeout=30
        )
        return RemoteResult(command_line(argv), done.returncode, done.stdout, done.stderr)

    def stream(self, argv, *, stdout, stderr, stdin=None, timeout=None, chunk=61):
        """As run, the output handed on in small pieces, as a connection brings it (a mark may span two)."""
        result = self.run(argv, timeout=timeout)
        for at in range(0, len(result.stdout), chunk):
            stdout.write(result.stdout[at : at + chunk])
        stderr.write(result.stderr)
        return result.exit_code


def fake_aws(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/bash\necho "$*" >>{tmp_path}/calls\n{body}\n')
    (bin_dir / "aws").chmod(0o755)
    return bin_dir


def calls_when(tmp_path: Path, count: int) -> list[str]:
    """The stand-in aws's calls once there are ``count`` (the probe's delete runs detached)."""
    deadline = time.monotonic() + 10
    while len(lines := (tmp_path / "calls").read_text().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def test_a_writable_location_passes_and_the_probe_is_put_then_deleted(tmp_path):
    check_output_location(LocalHead(fake_aws(tmp_path, "exit 0")), make_run())
    put, rm = calls_when(tmp_path, 2)
    assert put.startswith("s3 cp --only-show-errors - s3://bucket-1/study/demo-1/.clustertools/probe-")
    assert rm == "s3 rm --quiet " + put.split()[-1]


def test_the_check_does_not_wait_for_the_probes_delete(tmp_path):
    """The delete is best effort and detached: the submit goes on while it runs."""
    check_output_location(
        LocalHead(fake_aws(tmp_path, f"if [[ $2 == rm ]]; then sleep 2; echo deleted >>{tmp_path}/calls; fi")),
        make_run(),
    )
    assert "deleted" not in (tmp_path / "calls").read_text()
    assert calls_when(tmp_path, 3)[-1] == "deleted"


def test_a_probe_that_cannot_be_deleted_still_passes(tmp_path):
    check_output_location(LocalHead(fake_aws(tmp_path, "[[ $2 == cp ]]")), make_run())


def test_a_missing_bucket_stops_the_submit_with_one_line_naming_it(tmp_path):
    body = (
        'echo "upload failed: - to s3://bucket-1/x An error occurred (NoSuchBucket) when calling the PutObject '
        'operation: The specified bucket does not exist" >&2; exit 1'
    )
    with pytest.raises(ClusterToolsError) as info:
        check_output_location(LocalHead(fake_aws(tmp_path, body)), make_run())
    line = info.value.one_line()
    assert line.startswith(
        "the output location s3://bucket-1/study/demo-1/ is not writable from the head node: upload failed: "
    )
    assert "NoSuchBucket" in line and "nothing was submitted" in line and "create the bucket" in line


def test_no_aws_cli_on_the_head_node_is_said_so(tmp_path):
    head = LocalHead(tmp_path)
    head.path = str(tmp_path)  # bash alone: this machine has an aws in /usr/bin
    (tmp_path / "bash").symlink_to("/bin/bash")
    with pytest.raises(ClusterToolsError, match="the aws CLI is not on the head node of sandbox"):
        check_output_location(head, make_run())
