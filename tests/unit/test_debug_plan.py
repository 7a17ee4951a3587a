"""debug's plan: srun with the run's resources (overridable), the wrapper in --debug mode, every word quoted."""

from __future__ import annotations

import shlex

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import JobSpec
from cluster_tools.render.run_scripts import render_wrapper
from cluster_tools.services.remote.debug_shell import debug_resources, plan_debug, task_of
from cluster_tools.slurm.interactive import srun_argv
from tests.unit.run_fixtures import make_run


def test_srun_has_a_pty_and_the_resources_given():
    assert srun_argv(
        ["bash", "-i"], job_name="ctdebug", pty=True, partition="gpu", cpus=8, mem="32G", time="02:00:00"
    ) == [
        "srun",
        "--pty",
        "--job-name=ctdebug",
        "--partition=gpu",
        "--cpus-per-task=8",
        "--mem=32G",
        "--time=02:00:00",
        "bash",
        "-i",
    ]
    assert srun_argv(["x"], job_name="n", pty=False) == ["srun", "--job-name=n", "x"]
    assert srun_argv(["x"], job_name="n", pty=False, gpus=2) == ["srun", "--job-name=n", "--gres=gpu:2", "x"]


def test_resources_come_from_the_run_and_the_command_line_wins():
    job = JobSpec(command="x", cpus=4, mem="8G", time="01:00:00", partition="cpu")
    assert debug_resources(job, {"cpus": 2, "mem": None}).model_dump(include={"cpus", "mem", "partition"}) == {
        "cpus": 2,
        "mem": "8G",
        "partition": "cpu",
    }
    assert debug_resources(None, {}).cpus == 1


@pytest.mark.parametrize("bad", [{"mem": "lots"}, {"time": "1h; reboot"}, {"partition": "a b"}, {"partition": "$(id)"}])
def test_bad_resources_are_refused(bad):
    with pytest.raises(ConfigError, match="invalid option"):
        debug_resources(None, bad)


def test_the_subject_is_found_in_its_latest_attempt():
    run = make_run(("a", "b", "c"))
    assert task_of(run, "b") == (1, 1)
    retry = run.model_copy(
        update={
            "attempts": [
                *run.attempts,
                run.attempts[0].model_copy(update={"number": 2, "subjects": ["c", "b"], "chunks": []}),
            ]
        }
    )
    assert task_of(retry, "b") == (2, 1) and task_of(retry, "a") == (1, 0)
    with pytest.raises(ConfigError, match="not a subject"):
        task_of(run, "zzz")


def test_a_subject_runs_the_runs_own_wrapper_in_debug_mode_from_the_run_directory():
    run = make_run(("sub-01", "sub-02"), cpus=4, mem="8G", time="00:30:00", partition="compute")
    run = run.model_copy(update={"remote_dir": "/home/u s/.clustertools/runs/demo-1;$(id)"})
    plan = plan_debug(run, "sub-02", debug_resources(run.job, {}), pty=True)
    assert plan.files == {f"{run.remote_dir}/debug.sh": render_wrapper(run)}
    words = shlex.split(plan.command)
    assert words[:4] == ["cd", run.remote_dir, "&&", "exec"]
    assert words[4:] == [
        "srun",
        "--pty",
        "--job-name=ctdebug-demo-1",
        "--partition=compute",
        "--cpus-per-task=4",
        "--mem=8G",
        "--time=00:30:00",
        "bash",
        "debug.sh",
        "--debug",
        "1",
        "1",
    ]


def test_without_a_subject_a_plain_shell():
    plan = plan_debug(None, None, debug_resources(None, {"cpus": 2}), pty=True)
    assert shlex.split(plan.command) == [
        "exec",
        "srun",
        "--pty",
        "--job-name=ctdebug",
        "--cpus-per-task=2",
        "--mem=1G",
        "--time=01:00:00",
        "bash",
        "-i",
    ]
    assert plan.files == {}
    with pytest.raises(ConfigError, match="needs its run"):
        plan_debug(None, "sub-01", debug_resources(None, {}), pty=True)
