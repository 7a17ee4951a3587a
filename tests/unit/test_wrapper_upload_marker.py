"""The run wrapper marks an output upload in flight for the head node's autostop: <run>/uploading/<subject>.
<attempt> exists while its `aws s3 cp` runs, and is gone after it, whether the upload worked or not."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.test_wrapper_debug import FAKE_AWS, bash  # the fixture `run_dir` comes from conftest.py

# Wraps the stand-in aws: an upload to the output bucket first lists the markers present at that moment.
SPY = """#!/bin/bash
RUN_DIR=$(cd "$(dirname "$0")/../run" && pwd)  # the wrapper runs aws in a clean environment
if [[ ${@: -1} == s3://bucket-1/* ]]; then
  ls -1 "$RUN_DIR/uploading" >> "$RUN_DIR/markers-seen" 2>&1
  [[ ! -e $RUN_DIR/../upload-fails ]] || exit 1
fi
exec "$(dirname "$0")/aws-real" "$@"
"""


@pytest.fixture
def spied(run_dir):
    bin_dir = run_dir.parent / "bin"
    (bin_dir / "aws-real").write_text(FAKE_AWS)
    (bin_dir / "aws-real").chmod(0o755)
    (bin_dir / "aws").write_text(SPY)
    return run_dir


@pytest.mark.parametrize("fails", [False, True])
def test_the_marker_exists_during_the_upload_and_is_removed_after(spied, fails):
    if fails:
        (spied.parent / "upload-fails").touch()
    result = bash(spied, "1", "0", env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7"})
    tries = 4 if fails else 1
    assert (spied / "markers-seen").read_text() == "sub-1.1\n" * tries, "the marker is there while aws s3 cp runs"
    assert os.listdir(spied / "uploading") == [], "and gone after it"
    state = "FAILED" if fails else "SUCCEEDED"
    record = json.loads((spied / "records" / "new" / f"sub-1.1.{state}.json").read_text())
    assert record["exit_code"] == (96 if fails else 0), result.stderr


def test_a_failed_upload_is_retried_then_the_outputs_are_kept_on_the_run_dir_and_recorded(spied):
    """Issue 11, item 7: the outputs of a task whose upload failed were deleted with its scratch dir."""
    (spied.parent / "upload-fails").touch()
    result = bash(spied, "1", "0", env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7"})
    assert result.returncode == 96
    assert result.stderr.count("uploading to S3 failed; trying again in 0 s") == 3
    kept = spied / "unsent" / "sub-1.1"
    assert (kept / "sub-1" / "listing").read_text() == "T1 w.nii\n", "the command's outputs survive"
    staged = json.loads((kept / ".clustertools" / "records" / "sub-1.1.json").read_text())
    assert staged["state"] == "SUCCEEDED", "the record to upload later says what the command did"
    record = json.loads((spied / "records" / "new" / "sub-1.1.FAILED.json").read_text())
    assert record["kept"] == str(kept)
    assert record["error"] == (
        f"uploading to S3 failed after 4 tries (the command exited 0); outputs kept at {kept}: "
        "clustertools results push demo-1"
    )
    assert os.listdir(spied.parent / "scratch") == []


def test_an_upload_that_fails_once_succeeds_on_the_next_try(spied):
    aws = spied.parent / "bin" / "aws"
    # fails the first upload only: the flag file is removed by the first try
    aws.write_text(
        SPY.replace(
            "[[ ! -e $RUN_DIR/../upload-fails ]] || exit 1",
            '[[ ! -e $RUN_DIR/../upload-fails ]] || { rm "$RUN_DIR/../upload-fails"; exit 1; }',
        )
    )
    (spied.parent / "upload-fails").touch()
    result = bash(spied, "1", "0", env={"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7"})
    assert result.returncode == 0, result.stderr
    record = json.loads((spied / "records" / "new" / "sub-1.1.SUCCEEDED.json").read_text())
    assert record["kept"] == "" and not (spied / "unsent").exists()


def test_a_signal_during_the_retries_stops_them_and_keeps_the_outputs(spied):
    """scancel or the time limit gives KillWait seconds (30 on ParallelCluster) before SIGKILL: no waiting then."""
    import signal
    import subprocess
    import time

    (spied.parent / "upload-fails").touch()
    root = spied.parent
    env = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(root / "scratch"),
        "HOME": str(root / "home"),
        "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "30 30 30",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
    }
    task = subprocess.Popen(
        ["bash", str(spied / "wrapper.sh"), "1", "0"],
        env=env,
        cwd=spied,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (spied / "markers-seen").exists():
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.05)
    time.sleep(0.3)  # into the first 30 s wait
    started = time.monotonic()
    task.send_signal(signal.SIGTERM)
    _, stderr = task.communicate(timeout=10)
    assert time.monotonic() - started < 5, "the wait ended at once"
    assert task.returncode == 96, stderr
    record = json.loads((spied / "records" / "new" / "sub-1.1.FAILED.json").read_text())
    assert record["kept"] == str(spied / "unsent" / "sub-1.1") and "failed after 1 try (" in record["error"]
    assert (spied / "unsent" / "sub-1.1" / "sub-1" / "listing").exists()
