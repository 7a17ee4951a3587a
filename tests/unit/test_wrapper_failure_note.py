"""A failed subject's note names the command's last line on stderr, as data: quotes, backslashes and control
characters cannot break its JSON record; a command that said nothing leaves no note."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run

FAKE_AWS = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'


def final_record(tmp_path: Path, command: str) -> dict:
    run = make_run(("sub-1",), command=command)
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": []})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (tmp_path / "scratch").mkdir()
    subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        cwd=directory,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
        },
        timeout=60,
    )
    [path] = (directory / "records" / "new").glob("sub-1.1.FAILED.json")
    return json.loads(path.read_text())


def test_the_last_stderr_line_is_the_note(tmp_path):
    record = final_record(tmp_path, "echo first >&2; printf 'boom \"q\" \\\\ back\\x01\\n\\n  \\n' >&2; exit 3")
    assert record["exit_code"] == 3 and record["error"] == 'last line on stderr: boom "q" \\ back'


@pytest.mark.parametrize("command", ["exit 4", "echo only-stdout; exit 4"])
def test_no_stderr_no_note(tmp_path, command):
    assert final_record(tmp_path, command)["error"] == ""


def test_a_long_line_is_cut_to_200_characters(tmp_path):
    record = final_record(tmp_path, "printf 'x%.0s' $(seq 500) >&2; exit 1")
    assert record["error"] == "last line on stderr: " + "x" * 200
