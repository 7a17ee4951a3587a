"""submit.sh run for real against a fake sbatch and squeue: what Slurm accepted is never submitted
again, and an sbatch that gave no answer is looked for before anything is said about it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cluster_tools.render.run_scripts import render_chunk_list, render_submit_script
from cluster_tools.slurm.limits import plan_chunks
from tests.unit.run_fixtures import make_run
from tests.unit.test_wrapper_debug import bash  # the fixture `run_dir` (wrapper.sh, manifest) comes from conftest.py

FAKE_SQUEUE = """#!/bin/bash
[[ -e "$FAKE/squeue-fails" ]] && { echo "slurm_load_jobs error: Socket timed out" >&2; exit 1; }
cat "$FAKE/queue" 2>/dev/null
exit 0
"""

# ok: answers at once; slow-ok: answers, then hangs; late: Slurm takes the array but the answer never comes;
# lost: nothing, ever; refuse: Slurm says no.
FAKE_SBATCH = """#!/bin/bash
comment=""
for arg; do [[ $arg == --comment=* ]] && comment=${arg#--comment=}; done
echo "$*" >>"$FAKE/calls"
case $(cat "$FAKE/mode") in
  ok) echo 101 ;;
  slow-ok) echo 101; sleep 5 ;;
  late) echo "101 $comment" >>"$FAKE/queue"; sleep 5 ;;
  lost) sleep 5 ;;
  refuse) echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def head_node(tmp_path):
    """A run directory with submit.sh for one chunk, and fake sbatch/squeue first on PATH."""
    fake = tmp_path / "fake"
    fake.mkdir()
    for name, text in {"squeue": FAKE_SQUEUE, "sbatch": FAKE_SBATCH}.items():
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    run_dir = tmp_path / "run"
    (run_dir / "attempts" / "1").mkdir(parents=True)
    (run_dir / "attempts" / "1" / "chunks").write_text(render_chunk_list(plan_chunks(3, 1001)))
    script = render_submit_script(make_run(), sbatch_timeout=1, resolve_tries=3, resolve_wait=0)
    (run_dir / "submit.sh").write_text(script)

    def submit(mode: str) -> subprocess.CompletedProcess[str]:
        (fake / "mode").write_text(mode)
        env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE": str(fake)}
        return subprocess.run(
            ["bash", str(run_dir / "submit.sh"), "1"], capture_output=True, text=True, env=env, timeout=60
        )

    return submit, fake, run_dir / "attempts" / "1" / "chunk-0.jobid"


def calls(fake: Path) -> int:
    path = fake / "calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_an_answered_sbatch_writes_the_marker_and_is_not_sent_again(head_node):
    submit, fake, marker = head_node
    first = submit("ok")
    assert first.returncode == 0 and first.stdout == "chunk 0 101 submitted\n"
    assert marker.read_text() == "101\n" and calls(fake) == 1
    assert "array.sbatch 1 0 0" in (fake / "calls").read_text()  # the chunk goes to the tasks
    again = submit("ok")
    assert again.stdout == "chunk 0 101 already\n" and calls(fake) == 1


def test_an_sbatch_without_answer_whose_array_slurm_took_is_found_in_the_queue(head_node):
    submit, fake, marker = head_node
    first = submit("late")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "chunk 0 101 submitted\n" and marker.read_text() == "101\n"
    assert submit("ok").stdout == "chunk 0 101 already\n" and calls(fake) == 1


def test_a_job_id_printed_before_the_timeout_is_slurms_yes(head_node):
    submit, _, marker = head_node
    result = submit("slow-ok")
    assert result.returncode == 0 and result.stdout == "chunk 0 101 submitted\n" and marker.read_text() == "101\n"


def test_an_sbatch_without_answer_and_no_trace_is_unknown_not_unsent(head_node):
    submit, _, marker = head_node
    first = submit("lost")
    assert first.returncode == 75 and first.stdout == "chunk 0 unknown\n"
    assert not marker.exists()


def test_a_task_that_started_tells_submit_its_chunk_was_accepted_after_squeue_forgot_it(head_node):
    submit, fake, marker = head_node
    assert submit("lost").stdout == "chunk 0 unknown\n"
    marker.write_text("207\n")  # what wrapper.sh writes from SLURM_ARRAY_JOB_ID when the task starts
    again = submit("ok")
    assert again.returncode == 0 and again.stdout == "chunk 0 207 already\n" and calls(fake) == 1


def test_a_refusal_is_reported_as_one(head_node):
    submit, _, marker = head_node
    refused = submit("refuse")
    assert refused.returncode == 1 and refused.stdout == "chunk 0 refused\n"
    assert "Invalid partition" in refused.stderr and not marker.exists()


def test_a_queue_that_does_not_answer_stops_before_any_sbatch(head_node):
    submit, fake, _ = head_node
    (fake / "squeue-fails").touch()
    result = submit("ok")
    assert result.returncode == 3 and result.stdout == "" and calls(fake) == 0
    assert "nothing was submitted" in result.stderr


def test_a_task_writes_its_chunks_marker_when_it_starts_and_keeps_one_already_there(run_dir):
    directory = run_dir
    marker = directory / "attempts" / "1" / "chunk-4.jobid"
    task = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "7"}
    assert bash(directory, "1", "0", "4", env=task).returncode == 0
    assert marker.read_text() == "7\n"
    marker.write_text("6\n")  # submit.sh's answer came first: the task does not rewrite it
    assert bash(directory, "1", "0", "4", env=task).returncode == 0 and marker.read_text() == "6\n"
    assert bash(directory, "1", "0", "../x", env=task).returncode == 0  # not a chunk: no marker anywhere
    assert sorted(p.name for p in (directory / "attempts" / "1").iterdir()) == ["chunk-4.jobid", "manifest"]
