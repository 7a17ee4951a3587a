"""The run wrapper marks an output upload in flight for the head node's autostop: <run>/uploading/<subject>.
<attempt> exists while its `aws s3 cp` runs, and is gone after it, whether the upload worked or not."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.test_wrapper_debug import FAKE_AWS, bash, run_dir  # noqa: F401  (run_dir is a fixture)

# Wraps the stand-in aws: an upload to the output bucket first lists the markers present at that moment.
SPY = """#!/bin/bash
if [[ ${@: -1} == s3://bucket-1/* ]]; then
  ls -1 "$RUN_DIR/uploading" >> "$RUN_DIR/markers-seen" 2>&1
  [[ -z ${UPLOAD_FAILS:-} ]] || exit 1
fi
exec "$(dirname "$0")/aws-real" "$@"
"""


@pytest.fixture
def spied(run_dir):  # noqa: F811
    bin_dir = run_dir.parent / "bin"
    (bin_dir / "aws-real").write_text(FAKE_AWS)
    (bin_dir / "aws-real").chmod(0o755)
    (bin_dir / "aws").write_text(SPY)
    return run_dir


@pytest.mark.parametrize("fails", [False, True])
def test_the_marker_exists_during_the_upload_and_is_removed_after(spied, fails):
    env = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7", "RUN_DIR": str(spied),
           **({"UPLOAD_FAILS": "1"} if fails else {})}
    result = bash(spied, "1", "0", env=env)
    assert (spied / "markers-seen").read_text() == "sub-1.1\n", "the marker is there while aws s3 cp runs"
    assert os.listdir(spied / "uploading") == [], "and gone after it"
    state = "FAILED" if fails else "SUCCEEDED"
    record = json.loads((spied / "records" / "new" / f"sub-1.1.{state}.json").read_text())
    assert record["exit_code"] == (96 if fails else 0), result.stderr
