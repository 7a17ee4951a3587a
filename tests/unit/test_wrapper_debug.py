"""wrapper.sh run by bash on this machine with a stand-in `aws`: as a task, and in --debug mode,
where it sets up exactly what the task had (subject, variables, staged input) and opens a shell."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run

COMMAND = 'ls "$INPUT_DIR" > "$OUTPUT_DIR/listing"; echo "lr=$LR"; [ "$SUBJECT" != "sub 2" ] || exit 5'
FAKE_AWS = """#!/bin/bash
# stand-in: aws s3 cp --quiet --recursive SRC DST, with s3://in/ and s3://bucket-1/ as local directories
# under ../s3 (found from where it lies: the wrapper runs aws in a clean environment, without FAKE_S3)
FAKE_S3=$(cd "$(dirname "$0")/.." && pwd)/s3
[[ $1 == s3 && $2 == cp ]] || exit 2
src=${@: -2:1} dst=${@: -1}
src=${src/s3:\\/\\/in\\//$FAKE_S3/in/} src=${src/s3:\\/\\/bucket-1\\//$FAKE_S3/out/}
dst=${dst/s3:\\/\\/bucket-1\\//$FAKE_S3/out/}
[[ -d $src ]] || { echo "no such prefix $src" >&2; exit 1; }
mkdir -p "$dst" && cp -R "$src/." "$dst/"
"""


@pytest.fixture
def run_dir(tmp_path):
    run = make_run(("sub-1", "sub 2"), command=COMMAND, columns=("LR",), rows=(("0.1",), ("0.2",)))
    run = run.model_copy(update={"input": "s3://in/derivatives", "remote_dir": str(tmp_path / "run")})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    for subject in ("sub-1", "sub 2"):
        (tmp_path / "s3" / "in" / "derivatives" / subject).mkdir(parents=True)
        (tmp_path / "s3" / "in" / "derivatives" / subject / "T1 w.nii").write_text(subject)
    (tmp_path / "scratch").mkdir()
    (tmp_path / "home").mkdir()
    return directory


def bash(run_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    root = run_dir.parent
    base = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(root / "scratch"),
        "HOME": str(root / "home"),
        "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "0 0 0",
    }
    return subprocess.run(
        ["bash", str(run_dir / "wrapper.sh"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=run_dir,
        timeout=60,
    )


def test_as_a_task_the_input_is_staged_and_the_failure_recorded(run_dir):
    result = bash(run_dir, "1", "0", env={"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "7"})
    assert result.returncode == 5, result.stderr
    record = json.loads((run_dir / "records" / "new" / "sub 2.1.FAILED.json").read_text())
    assert record["exit_code"] == 5 and record["job_id"] == "7_1"
    uploaded = run_dir.parent / "s3" / "out" / "study" / "demo-1"
    assert (uploaded / "sub 2" / "listing").read_text() == "T1 w.nii\n"
    assert (run_dir / "logs" / "sub 2.1.out").read_text() == "lr=0.2\n"
    assert os.listdir(run_dir.parent / "scratch") == []


def test_debug_mode_sets_up_the_task_then_opens_a_shell_and_records_nothing(run_dir):
    typed = (
        'echo "S=$SUBJECT|$LR|$RUN_ID|$ATTEMPT"; ls "$INPUT_DIR"; test -d "$OUTPUT_DIR" && echo out-ok; '
        "history | tail -n 2; exit 3\n"
    )
    result = bash(run_dir, "--debug", "1", "1", stdin=typed, env={"SLURM_JOB_ID": "42"})
    lines = result.stdout.splitlines()
    assert lines[0] == f"clustertools debug: the command the task ran: {COMMAND}"
    assert "S=sub 2|0.2|demo-1|1" in lines and "T1 w.nii" in lines and "out-ok" in lines
    assert any(line.strip().endswith(COMMAND) for line in lines), "the command is the shell's last history line"
    assert result.returncode == 3, result.stderr
    assert not (run_dir / "records" / "new").exists() or os.listdir(run_dir / "records" / "new") == []
    assert not (run_dir / "logs").exists() or os.listdir(run_dir / "logs") == []
    assert not (run_dir.parent / "s3" / "out").exists(), "debug uploads nothing"
    assert os.listdir(run_dir.parent / "scratch") == [], "the scratch goes when the shell ends"


def test_debug_mode_opens_the_shell_even_when_staging_fails(run_dir):
    (run_dir.parent / "s3" / "in" / "derivatives" / "sub-1" / "T1 w.nii").unlink()
    result = bash(run_dir, "--debug", "1", "0", stdin='echo "S=$SUBJECT"\n')
    assert result.returncode == 0 and "S=sub-1" in result.stdout
    assert "no input under s3://in/derivatives/sub-1/: the shell opens anyway" in result.stderr
