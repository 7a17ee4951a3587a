"""The files a run puts on the head node: golden files, quoting of hostile values, shellcheck."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cluster_tools.render.run_scripts import (
    render_array_script,
    render_chunk_list,
    render_manifest,
    render_status_script,
    render_submit_script,
    render_wrapper,
)
from cluster_tools.slurm.limits import plan_chunks
from tests.helpers import assert_golden
from tests.unit.run_fixtures import make_run

HOSTILE_COMMAND = "echo 'it'\"s\" $(id) `id` ; rm -rf ~ \n second line"


def test_array_script_matches_golden():
    assert_golden("run_array.sbatch", render_array_script(make_run(partition="compute", cpus=4, mem="8G")))
    assert_golden("run_array_gpu.sbatch", render_array_script(make_run(partition="gpu", cpus=4, mem="16G", gpus=1)))


def test_wrapper_matches_golden():
    assert_golden("run_wrapper.sh", render_wrapper(make_run()))


def test_submit_and_status_scripts_match_golden():
    assert_golden("run_submit.sh", render_submit_script(make_run(throttle=50)))
    assert_golden("run_status.sh", render_status_script(make_run()))


def test_manifest_for_a_csv_run():
    run = make_run(("task-00001", "task-00002"), columns=("LR", "NOTE"), rows=(("0.1", "a b"), ("0.2", "$(id);'x'")))
    assert render_manifest(run.columns, run.attempts[0]) == (
        "SUBJECT\x1fLR\x1fNOTE\ntask-00001\x1f0.1\x1fa b\ntask-00002\x1f0.2\x1f$(id);'x'\n"
    )
    assert_golden("run_manifest", render_manifest(run.columns, run.attempts[0]).replace("\x1f", "<US>"))


def test_a_hostile_command_is_one_quoted_word_in_the_wrapper():
    wrapper = render_wrapper(make_run(command=HOSTILE_COMMAND))
    line = next(row for row in wrapper.split("\nCT_CONTAINER=")[0].splitlines() if row.startswith("CT_COMMAND="))
    # bash itself reads the assignment back as exactly the command text
    out = subprocess.run(
        [
            "bash",
            "-c",
            wrapper.split("\nCT_CONTAINER=")[0].split("\nRUN_ID=")[1].split("\n", 1)[1] + '\nprintf %s "$CT_COMMAND"',
        ],
        capture_output=True,
        text=True,
    )
    assert line.startswith("CT_COMMAND='") and out.stdout == HOSTILE_COMMAND


def test_chunks_follow_max_array_size():
    assert [(c.offset, c.count) for c in plan_chunks(35, 11)] == [(0, 11), (11, 11), (22, 11), (33, 2)]
    assert len(plan_chunks(10_000, 1001)) == 10 and plan_chunks(0, 1001) == []
    assert render_chunk_list(plan_chunks(3, 2)) == "0 0 2\n1 2 1\n"


@pytest.mark.parametrize(
    "render",
    [render_wrapper, render_submit_script, render_status_script, render_array_script],
    ids=lambda f: f.__name__,
)
def test_rendered_scripts_pass_shellcheck(tmp_path, render):
    assert shutil.which("shellcheck"), "shellcheck is missing: dev/setup installs it"
    script = tmp_path / "script.sh"
    script.write_text(render(make_run(command=HOSTILE_COMMAND, container="docker://x/y:1", partition="p1", throttle=3)))
    result = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
