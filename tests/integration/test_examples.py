"""The examples run as their README says, against the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_json_jobs_writes_a_config_per_job_waits_and_gathers_every_output(sandbox, tmp_path):
    """Seed 004's shape: one JSON config per job in S3, its key a column, wait with progress, gather outputs."""
    example = tmp_path / "json_jobs"
    shutil.copytree(EXAMPLES / "json_jobs", example)
    done = subprocess.run(
        [sys.executable, "start_jobs.py", "--jobs", "4"],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CLUSTERTOOLS_STATE_DIR": str(sandbox.state)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("Created input data: s3://clustertools-sandbox/job-configs/") for line in lines) == 4
    assert "All jobs finished." in lines and any(line == "Jobs finished: 4/4" for line in lines), lines
    assert json.loads(lines[-1]) == [
        {"x+y": 5, "x*y": 6},
        {"x+y": 7, "x*y": 12},
        {"x+y": 9, "x*y": 20},
        {"x+y": 11, "x*y": 30},
    ]


TRAIN = """import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--out")
args = parser.parse_args()
if os.environ["ATTEMPT"] == "1" and args.lr > 0.25:  # the large ones "need more memory" the first time
    sys.exit("MemoryError: cannot allocate the batch")
with open(args.out, "w") as handle:
    json.dump({"lr": args.lr, "loss": round(1 / (1 + args.lr), 4)}, handle)
"""


def readme_python_example() -> str:
    text = (EXAMPLES.parent / "README.md").read_text()
    section = text[text.index("## Python API") :]
    return section[section.index("```python\n") + len("```python\n") : section.index("\n```\n")]


def test_the_readmes_python_example_runs_a_30_row_sweep_and_reruns_the_failed_rows_with_more_memory(sandbox, tmp_path):
    from tests.integration.run_helpers import make_project

    project = make_project(sandbox, tmp_path, "sweep")
    (project / "code").mkdir()
    (project / "code" / "train.py").write_text(TRAIN)
    (project / "sweep.py").write_text(readme_python_example())
    done = subprocess.run(
        [sys.executable, "sweep.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "CLUSTERTOOLS_STATE_DIR": str(sandbox.state)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if " FAILED " in line]
    assert len(failed) == 5 and "MemoryError: cannot allocate the batch" in failed[0], done.stdout
    assert "30 rows; {'subject': 'lr-29', 'lr': 0.3, 'loss': 0.7692}" in done.stdout, done.stdout
    assert len(list((project / "results").glob("lr-*/metrics.json"))) == 30
