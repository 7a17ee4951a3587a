"""How a task ended, each its own state: TIMEOUT (a TERM at its time limit), OOM (the kernel killed it for
memory), NODE_FAIL (its node was lost: Slurm still lists the task so), CANCELLED (a TERM before the limit).
The wrapper runs here with bash and a stand-in aws; Slurm's part is its squeue lines, as captured from the
sandbox. A resubmitted attempt's own resources reach its array script and its wrapper."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cluster_tools.model.runs.run_record import Chunk
from cluster_tools.model.runs.run_status import merge_status
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.render.run_scripts import render_array_script, render_attempt_resources
from cluster_tools.services.runs.resubmit import attempt_job
from cluster_tools.services.runs.run_follow import next_attempt, subjects_to_rerun
from cluster_tools.slurm.queue import parse_squeue
from tests.unit.run_fixtures import lay_out_run_dir, make_run

FAKE_AWS = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'


def terminated_after(tmp_path: Path, seconds: float, time_s: int) -> dict:
    """The final record of a task given ``time_s`` seconds (its attempt's resources file), sent TERM after
    ``seconds``, as Slurm does at the limit or on scancel."""
    run = make_run(("sub-1",), command="sleep 30")
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": []})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (directory / "attempts" / "1" / "resources").write_text(f"mem=1G\ngpus=0\ntime_s={time_s}\ntime=00:00:0{time_s}\n")
    (tmp_path / "scratch").mkdir()
    task = subprocess.Popen(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        cwd=directory,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
        },
    )
    deadline = time.monotonic() + 20
    while not list((directory / "records" / "new").glob("sub-1.1.RUNNING.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    task.send_signal(signal.SIGTERM)
    task.send_signal(signal.SIGTERM)  # scancel signals again: the final record is written all the same
    assert task.wait(timeout=30) == 143, task.stderr.read()
    [path] = [p for p in (directory / "records" / "new").glob("sub-1.1.*.json") if "RUNNING" not in p.name]
    assert not list((tmp_path / "scratch").iterdir()), "the scratch dir is removed"
    return json.loads(path.read_text())


def test_a_term_at_the_time_limit_is_timeout_and_one_before_it_is_cancelled(tmp_path):
    timed_out = terminated_after(tmp_path / "a", 0.5, 5)  # ran + 10 s of Slurm's slack >= 5 s
    assert timed_out["state"] == "TIMEOUT" and timed_out["exit_code"] == 143
    assert "killed at its time limit (--time 00:00:05)" in timed_out["error"]
    cancelled = terminated_after(tmp_path / "b", 0.5, 3600)
    assert cancelled["state"] == "CANCELLED" and cancelled["error"] == "terminated by Slurm (scancel)"


# squeue -h -r -t all -o '%F|%K|%T|%r|%k' on the sandbox, after `sandbox interrupt` of a --no-requeue task.
SQUEUE = (
    "41|0|NODE_FAIL|NodeDown|ct:{run}:a1:c0\n"
    "41|1|BOOT_FAIL|None|ct:{run}:a1:c0\n"
    "41|2|COMPLETED|None|ct:{run}:a1:c0\n"
    "41|3|OUT_OF_MEMORY|OutOfMemory|ct:{run}:a1:c0\n"
)


def test_slurms_final_state_names_how_a_task_without_its_record_ended():
    run = make_run(("s-0", "s-1", "s-2", "s-3"))
    run = run.model_copy(
        update={
            "attempts": [
                run.attempts[0].model_copy(update={"chunks": [Chunk(index=0, offset=0, count=4, job_id="41")]})
            ]
        }
    )
    running = "".join(
        json.dumps({"subject": s, "attempt": 1, "state": "RUNNING", "node": "n1"}) + "\n" for s in ("s-0", "s-2", "s-3")
    )
    status = merge_status(run, parse_records(running), parse_squeue(SQUEUE.format(run=run.run_id)))
    by_subject = {s.subject: s for s in status.subjects}
    assert by_subject["s-0"].state == "NODE_FAIL" and "its node was lost" in by_subject["s-0"].error
    assert by_subject["s-1"].state == "NODE_FAIL" and "before it started (BOOT_FAIL)" in by_subject["s-1"].error
    assert by_subject["s-2"].state == "FAILED" and "without a final record" in by_subject["s-2"].error
    assert by_subject["s-3"].state == "OOM"
    assert subjects_to_rerun(status, failed=True, without_output=None) == ["s-0", "s-1", "s-2", "s-3"]
    assert subjects_to_rerun(status, failed=True, without_output=None, states=frozenset({"NODE_FAIL"})) == [
        "s-0",
        "s-1",
    ]


def test_a_resubmitted_attempts_resources_reach_its_array_script_and_wrapper():
    run = make_run(("s-0", "s-1"))
    job = attempt_job(run, {"mem": "16G", "time": "02:00:00", "partition": "ondemand", "cpus": None})
    again = next_attempt(run, ["s-1"], job)
    assert again.attempts[-1].job == job and again.job_of(2).mem == "16G" and again.job_of(1) == run.job
    script = render_array_script(again, again.attempts[-1].job)
    assert "#SBATCH --mem=16G\n" in script and "#SBATCH --time=02:00:00\n" in script
    assert "#SBATCH --partition=ondemand\n" in script
    assert render_attempt_resources(job) == "mem=16G\ngpus=0\ntime_s=7200\ntime=02:00:00\n"
    # a second resubmit starts from the last attempt's resources
    assert attempt_job(again, {"cpus": 2}).mem == "16G"
    same = next_attempt(run, ["s-1"], attempt_job(run, {}))
    assert same.attempts[-1].job is None, "no change: the attempt keeps the run's resources"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mem": "lots"}, "--mem: must be a Slurm memory size"),
        ({"time": "10 --wrap=id"}, "--time: must be a Slurm time"),
        ({"partition": "a;b"}, "--partition"),
        ({"command": "true"}, "cannot change command on resubmit"),
    ],
)
def test_bad_resubmit_resources_are_one_line(change, message):
    from cluster_tools.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        attempt_job(make_run(("s-0",)), change)
    assert message in info.value.one_line()
