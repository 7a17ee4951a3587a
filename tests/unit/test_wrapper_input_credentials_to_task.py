"""storage.input_credentials_to_task (issue 15, item 5): the input secret's credentials reach the user's command,
for a task that fetches more of its input itself, and nothing else: not clustertools' upload (the node's role),
not a file, not a command line. The rendered wrapper runs under bash with the recording aws of the clean-env tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run
from tests.unit.test_wrapper_clean_env import FAKE_AWS, KEY_ID, SECRET_ARN, SECRET_KEY, aws_calls, wrapper

COMMAND = (
    'printf "%s|%s|%s\\n" "${AWS_ACCESS_KEY_ID:-none}" '
    '"$(printf %s "${AWS_SECRET_ACCESS_KEY:-}" | sha256sum | cut -c1-12)" "${AWS_PROFILE:-no-profile}"'
)
SEEN = f"{KEY_ID}|{hashlib.sha256(SECRET_KEY.encode()).hexdigest()[:12]}|no-profile\n"


def setup(
    tmp_path: Path, *, to_task: bool = True, container: str | None = None, shared: list[str] = ()
) -> tuple[Path, dict[str, str]]:
    run = make_run(("sub-1",), command=COMMAND, container=container)
    run = run.model_copy(
        update={
            "remote_dir": str(tmp_path / "run"),
            "input": "s3://in/hcp",
            "shared_dirs": list(shared),
            "input_credentials": SECRET_ARN,
            "input_credentials_to_task": to_task,
        }
    )
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (tmp_path / "s3" / "in" / "hcp" / "sub-1").mkdir(parents=True)
    (tmp_path / "s3" / "in" / "hcp" / "sub-1" / "T1.nii").write_text("x")
    for name in ("scratch", "home"):
        (tmp_path / name).mkdir()
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(tmp_path / "scratch"),
        "HOME": str(tmp_path / "home"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PROFILE": "node",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
        "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "0 0 0",
    }
    return directory, env


def files_holding_the_secret(root: Path) -> list[str]:
    """Every file under root that has the secret key in it, but the stand-in aws (which answers the secret) and
    its log of its calls."""
    held = []
    for path in root.rglob("*"):
        if path.name in ("aws", "aws-envs.jsonl") or not path.is_file():
            continue
        if SECRET_KEY.encode() in path.read_bytes():
            held.append(str(path.relative_to(root)))
    return held


def test_the_command_gets_the_credentials_read_once_and_the_upload_does_not(tmp_path):
    directory, env = setup(tmp_path)
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    assert (directory / "logs" / "sub-1.1.out").read_text() == SEEN
    read, staging, upload = aws_calls(tmp_path)
    assert read["argv"] == ["secretsmanager", "get-secret-value"], "read once, for the staging and the command"
    assert read["env"]["AWS_PROFILE"] == "node" and "AWS_SECRET_ACCESS_KEY" not in read["env"]
    assert staging["env"]["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY
    assert "AWS_SECRET_ACCESS_KEY" not in upload["env"] and upload["env"]["AWS_PROFILE"] == "node", "the node's role"
    assert files_holding_the_secret(tmp_path) == []


def test_without_the_setting_the_command_has_the_nodes_role_alone(tmp_path):
    directory, env = setup(tmp_path, to_task=False)
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    assert (directory / "logs" / "sub-1.1.out").read_text() == f"none|{hashlib.sha256(b'').hexdigest()[:12]}|node\n"
    assert [c["argv"][0] for c in aws_calls(tmp_path)] == ["secretsmanager", "s3", "s3"]


def test_a_secret_that_cannot_be_read_fails_the_subject_with_why(tmp_path):
    directory, env = setup(tmp_path)
    aws = tmp_path / "bin" / "aws"
    aws.write_text(
        aws.read_text().replace(
            'if sys.argv[1] == "secretsmanager":',
            'if sys.argv[1] == "secretsmanager":\n    sys.exit("AccessDeniedException")',
        )
    )
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 97
    record = json.loads(next((directory / "records" / "new").glob("sub-1.1.FAILED.json")).read_text())
    assert record["error"] == f"reading the input's credentials (secret {SECRET_ARN}) failed"


def test_the_debug_shell_has_them_too(tmp_path):
    directory, env = setup(tmp_path)
    result = wrapper(directory, env, "--debug", "1", "0", stdin=f"{COMMAND}\nexit 0\n")
    assert SEEN in result.stdout, result.stderr
    assert files_holding_the_secret(tmp_path) == []


# A stand-in runtime: records its arguments and environment, then runs what follows the image with the variables
# it was asked to pass by name, as the container would have them.
RECORDING_RUNTIME = """#!/bin/bash
root=$(cd "$(dirname "$0")/.." && pwd)
while [[ $1 == --root || $1 == --runroot || $1 == --tmpdir || $1 == --cgroup-manager || $1 == --events-backend ]]; do
  shift 2
done
case $1 in
  image) [[ $2 == inspect ]] && echo sha256:feed; [[ $2 == inspect ]]; exit ;;
  save) while [[ $1 != -o ]]; do shift; done; echo archive >"$2"; exit 0 ;;
  pull | load) exit 0 ;;
esac
printf '%s\\n' "$@" >"$root/runtime-args"
env -0 >"$root/runtime-env"
keep=(PATH=/usr/bin:/bin)
while [[ $1 != {image} ]]; do
  [[ $1 == --env-file ]] && mapfile -t -O 1 keep <"$2"
  [[ $1 == --env || $1 == -e ]] && [[ $2 != *=* ]] && keep+=("$2=${{!2}}")
  shift
done
shift
[[ $1 != -c ]] || set -- /bin/sh "$@"  # podman: /bin/sh is the entrypoint
[[ $1 != -- ]] || set -- env "$@"  # docker: env is
exec env -i "${{keep[@]}}" "$@"
"""


@pytest.mark.parametrize(("runtime", "flag"), [("podman", "--env"), ("docker", "-e")])
def test_a_container_runtime_passes_them_by_name_and_never_by_value(tmp_path, runtime, flag):
    image = "ghcr.io/acme/seg:1.0"
    shared = tmp_path / "shared"
    (shared / "clustertools").mkdir(parents=True)
    (shared / "clustertools" / "bootstrap.env").write_text(f"CT_RUNTIME={runtime}\n")  # the tests run as root
    directory, env = setup(tmp_path, container=f"docker://{image}", shared=[str(shared)])
    (tmp_path / "bin" / runtime).write_text(RECORDING_RUNTIME.format(image=image))
    (tmp_path / "bin" / runtime).chmod(0o755)
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    args = (tmp_path / "runtime-args").read_text().splitlines()
    assert [flag, "AWS_ACCESS_KEY_ID", flag, "AWS_SECRET_ACCESS_KEY"] == args[args.index(flag) :][:4], args
    assert not [a for a in args if KEY_ID in a or SECRET_KEY in a], "a value on the runtime's command line"
    assert f"AWS_SECRET_ACCESS_KEY={SECRET_KEY}" in (tmp_path / "runtime-env").read_text().split("\0")
    assert (directory / "logs" / "sub-1.1.out").read_text() == SEEN
    assert files_holding_the_secret(tmp_path) == ["runtime-env"], "the stand-in's own record of its environment"
