"""job.container_args: the image's own entrypoint runs with these arguments instead of a command. The project
refuses them without an image, with control characters, and where the cluster's runtime (enroot) runs no
entrypoint; submit refuses a ${NAME} the run does not have, and both a command and arguments at once; a
command given on the command line runs instead of them. Old runs keep their spec hashes."""

from __future__ import annotations

import re

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import JobSpec, parse_project
from cluster_tools.model.runs.subjects import unknown_variables
from cluster_tools.services.runs.run_prepare import job_spec
from tests.unit.test_config import CLUSTER, GOOD, error_of

IMAGE = "  container: docker://ghcr.io/acme/kwyk:1.0\n"
ARGS = '  container_args: ["--model", "bvwn", "${INPUT_DIR}/T1.nii.gz", "${OUTPUT_DIR}"]\n'
DOCKER = "bootstrap:\n  container_runtime: docker\n"


def project(text: str):
    return parse_project(text)


def test_the_arguments_load_with_an_image():
    loaded = project(GOOD.replace("  command: echo hi\n", IMAGE + ARGS))
    assert loaded.job.container_args == ["--model", "bvwn", "${INPUT_DIR}/T1.nii.gz", "${OUTPUT_DIR}"]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (ARGS, "container_args are the arguments of job.container's entrypoint: set container too"),
        (IMAGE + '  container_args: ["a\\nb"]\n', "no control characters"),
    ],
)
def test_arguments_without_an_image_or_with_control_characters_are_refused(job, message):
    assert message in error_of(GOOD.replace("  command: echo hi\n", job))


def test_enroot_runs_no_entrypoint_so_the_project_says_which_runtime_does():
    text = GOOD.replace("  command: echo hi\n", IMAGE + ARGS) + CLUSTER
    message = error_of(text)
    assert "job.container_args: enroot (the runtime here) runs job.command in the image" in message, message
    assert project(text + DOCKER).job.container_args


def test_submit_takes_one_of_command_and_arguments_and_a_command_given_now_wins():
    both = project(GOOD.replace("  command: echo hi\n", "  command: echo hi\n" + IMAGE + ARGS))
    with pytest.raises(ConfigError, match=re.escape("job.command and job.container_args are both set")):
        job_spec(both, {})
    args_only = project(GOOD.replace("  command: echo hi\n", IMAGE + ARGS))
    assert job_spec(args_only, {}).container_args and job_spec(args_only, {}).command is None
    given = job_spec(args_only, {"command": "kwyk --help"})
    assert given.command == "kwyk --help" and given.container_args is None


def test_only_known_variables_may_be_named():
    args = ["${INPUT_DIR}/${T1}", "$HOME", "${AGE}", "${T1}", "${SUBJECT}-${RUN_ID}-${ATTEMPT}-${OUTPUT_DIR}"]
    assert unknown_variables(args, ["AGE"]) == ["T1"]
    assert unknown_variables(["${}", "${1x}", "$(id)"], []) == []


def test_a_job_without_arguments_dumps_them_as_none():
    """prepare_run drops container_args from the spec hash when None: a rerun of an older run is still found."""
    assert JobSpec(command="true").model_dump()["container_args"] is None


# A stand-in runtime: writes its argv, one word per line, and the APPTAINERENV_ names it was given.
RECORDING = """#!/bin/bash
root=$(cd "$(dirname "$0")/.." && pwd)
printf '%s\\n' "$@" > "$root/argv"
env | grep -o '^APPTAINERENV_[A-Z_]*=[^ ]*' | sort > "$root/appenv" || true
"""


# podman's other verbs: a pull saves an archive, inspect tells a digest, the node's store has nothing yet.
PODMAN_FIRST = """while [[ $1 == --* ]]; do shift 2; done
case $1 in
  save) while [[ $1 != -o ]]; do shift; done; echo archive > "$2"; exit 0 ;;
  image) [[ $2 == inspect ]] && echo sha256:feed; [[ $2 == inspect ]]; exit ;;
  pull | load) exit 0 ;;
esac
"""


@pytest.mark.parametrize("runtime", ["docker", "apptainer", "podman"])
def test_each_runtime_runs_the_entrypoint_with_the_expanded_arguments(tmp_path, runtime):
    """Run by bash here with stand-ins (no engine): docker and podman read the task's variables from a file,
    apptainer gets them as APPTAINERENV_NAME; ${NAME} is replaced, $(...) is not run."""
    import subprocess

    from tests.unit.run_fixtures import lay_out_run_dir, make_run

    run = make_run(
        ("sub-1",), command=None, container="docker://ghcr.io/acme/kwyk:1.0", columns=("AGE",), rows=(("42",),)
    )
    run = run.model_copy(
        update={
            "job": run.job.model_copy(
                update={
                    "container_args": ["--age", "${AGE}", "${INPUT_DIR}/T1 w.nii", "$(touch /tmp/pwned)", "${SUBJECT}"]
                }
            )
        }
    )
    shared = tmp_path / "shared" / "clustertools"
    shared.mkdir(parents=True)
    (shared / "bootstrap.env").write_text(f"CT_RUNTIME={runtime}\n")  # the tests run as root, as the bootstrap
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [str(tmp_path / "shared")]})
    directory = lay_out_run_dir(tmp_path, run, "#!/bin/bash\nexit 0\n")
    script = RECORDING if runtime != "podman" else RECORDING.replace("printf", PODMAN_FIRST + "printf", 1)
    (tmp_path / "bin" / runtime).write_text(script)
    (tmp_path / "bin" / runtime).chmod(0o755)
    (tmp_path / "scratch").mkdir()
    (tmp_path / "home").mkdir()
    result = subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "HOME": str(tmp_path / "home"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
        },
        cwd=directory,
        timeout=60,
    )
    argv = (tmp_path / "argv").read_text().splitlines() if (tmp_path / "argv").exists() else []
    assert argv, result.stderr + (directory / "logs" / "sub-1.1.err").read_text()
    tail = argv[
        argv.index("ghcr.io/acme/kwyk:1.0" if runtime != "apptainer" else "docker://ghcr.io/acme/kwyk:1.0") + 1 :
    ]
    assert (
        tail[:2] == ["--age", "42"]
        and tail[2].endswith("/input/T1 w.nii")
        and tail[3:] == ["$(touch /tmp/pwned)", "sub-1"]
    )
    assert "--entrypoint" not in argv
    if runtime == "apptainer":
        assert argv[0] == "run" and "APPTAINERENV_AGE=42" in (tmp_path / "appenv").read_text().split()
    else:
        assert "--env-file" in argv
