"""GPUs per task: the array script asks Slurm for them (--gres=gpu:N) and the container is given them:
apptainer --nv, docker exactly the job's devices (SLURM_JOB_GPUS). The wrapper is run by bash here with
stand-in runtimes that print how they were called (no GPU on this machine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster_tools.render.run_scripts import render_array_script
from tests.unit.run_fixtures import lay_out_run_dir, make_run

FAKE_AWS = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'
# Each prints its arguments up to the image, then runs the task's argv (env -- ...).
FAKE_RUNTIME = (
    "#!/bin/bash\nargs=()\nwhile [[ $1 != env && $1 != -- ]]; do\n"
    '  if [[ $1 == --entrypoint ]]; then shift 3; set -- env "$@"; break; fi\n'  # docker: env IMAGE --
    '  args+=("$1"); shift\ndone\n'
    'echo "$(basename "$0") ${args[*]}" >> "$(dirname "$0")/../calls"\nexec "$@"\n'
)


def run_with(tmp_path: Path, runtime: str, gpus: int, env: dict[str, str]) -> str:
    run = make_run(("sub-1",), command="true", container="docker://ghcr.io/acme/train:1.0", gpus=gpus)
    shared = tmp_path / "shared"
    (shared / "clustertools").mkdir(parents=True)
    (shared / "clustertools" / "bootstrap.env").write_text(f"CT_RUNTIME={runtime}\n")
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [str(shared)]})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (tmp_path / "bin" / runtime).write_text(FAKE_RUNTIME)
    (tmp_path / "bin" / runtime).chmod(0o755)
    (tmp_path / "scratch").mkdir()
    result = subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
            **env,
        },
        cwd=directory,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + (directory / "logs" / "sub-1.1.err").read_text()
    return (tmp_path / "calls").read_text().strip()


def test_the_array_script_asks_for_the_gpus() -> None:
    assert "#SBATCH --gres=gpu:2\n" in render_array_script(make_run(gpus=2))
    assert "--gres" not in render_array_script(make_run())


@pytest.mark.parametrize(
    ("gpus", "env", "called"),
    [
        (1, {"SLURM_JOB_GPUS": "2,3"}, 'docker run --rm --gpus "device=2,3" -v'),
        (1, {}, "docker run --rm --gpus all -v"),
        (0, {"SLURM_JOB_GPUS": "0"}, "docker run --rm -v"),
    ],
)
def test_docker_is_given_exactly_the_jobs_gpus(tmp_path, gpus, env, called) -> None:
    assert run_with(tmp_path, "docker", gpus, env).startswith(called)


@pytest.mark.parametrize(("gpus", "called"), [(1, "apptainer exec --nv --bind"), (0, "apptainer exec --bind")])
def test_apptainer_binds_the_driver_only_for_a_gpu_task(tmp_path, gpus, called) -> None:
    assert run_with(tmp_path, "apptainer", gpus, {"CUDA_VISIBLE_DEVICES": "0"}).startswith(called)
