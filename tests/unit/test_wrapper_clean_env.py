"""The task's CSV columns reach the user's command alone, never the steps clustertools runs around it
(issue 11, item 3: a column PYTHONPATH planted a sitecustomize.py that the aws CLI loaded while the input
secret's credentials were in its environment). Safe by construction, not by the reserved-name list: the
manifest here holds reserved names the parser would refuse (PYTHONPATH, pythonpath, path, LD_PRELOAD...),
and the rendered wrapper runs under bash with stand-ins that record the environment they were given.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hcp/keys-AbCdEf"
KEY_ID, SECRET_KEY = "AKIAHCPEXAMPLEKEY123", "hcp/Secret+Value/ThatMustNeverLeak0000000"

# A Python aws (as the real CLI v1 is): PYTHONPATH in its environment would load the planted
# sitecustomize.py. It records each call's environment, answers the secret, and copies local folders.
FAKE_AWS = f"""#!/usr/bin/python3
import json, os, shutil, sys
root = os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[0])))
with open(os.path.join(root, "aws-envs.jsonl"), "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:3], "env": dict(os.environ)}}) + "\\n")
if sys.argv[1] == "secretsmanager":
    print(json.dumps({{"AccessKeyId": "{KEY_ID}", "SecretAccessKey": "{SECRET_KEY}"}}))
    sys.exit(0)
src, dst = sys.argv[-2], sys.argv[-1]
src = src.replace("s3://in/", root + "/s3/in/")
dst = dst.replace("s3://bucket-1/", root + "/s3/out/")
shutil.copytree(src, dst, dirs_exist_ok=True)
"""
# What the attacker's column points at: run by any Python that has it on its path.
SITECUSTOMIZE = """import os
with open(os.path.join(os.path.dirname(__file__), "..", "pwned"), "a") as out:
    out.write(os.environ.get("AWS_SECRET_ACCESS_KEY", "-") + "\\n")
"""
# Reserved names the parser refuses, in any case: here they are in the manifest all the same.
COLUMNS = (
    "PYTHONPATH",
    "pythonpath",
    "path",
    "LD_PRELOAD",
    "HOME",
    "AWS_SECRET_ACCESS_KEY",
    "BASH_ENV",
    "DOCKER_HOST",
    "AGE",
)
COMMAND = 'printf "%s|%s|%s|%s\\n" "$PYTHONPATH" "$pythonpath" "$path" "$AGE"'


def setup(tmp_path: Path, *, container: str | None = None, shared: list[str] = ()) -> tuple[Path, dict[str, str]]:
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "sitecustomize.py").write_text(SITECUSTOMIZE)
    values = (
        str(evil),
        str(evil),
        f"{evil}:/usr/bin:/bin",
        str(evil / "x.so"),
        str(evil),
        "stolen?",
        str(evil / "rc"),
        "tcp://attacker:2375",
        "42",
    )
    run = make_run(("sub-1",), command=COMMAND, columns=COLUMNS, rows=(values,), container=container)
    run = run.model_copy(
        update={
            "remote_dir": str(tmp_path / "run"),
            "input": "s3://in/hcp",
            "input_credentials": SECRET_ARN,
            "shared_dirs": list(shared),
        }
    )
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (tmp_path / "s3" / "in" / "hcp" / "sub-1").mkdir(parents=True)
    (tmp_path / "s3" / "in" / "hcp" / "sub-1" / "T1.nii").write_text("x")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "home").mkdir()
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(tmp_path / "scratch"),
        "HOME": str(tmp_path / "home"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
        "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "0 0 0",
    }
    return directory, env


def wrapper(directory: Path, env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(directory / "wrapper.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=60,
        input=stdin,
    )


def aws_calls(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "aws-envs.jsonl").read_text().splitlines()]


def assert_no_column_reached_aws(root: Path) -> None:
    calls = aws_calls(root)
    assert [c["argv"] for c in calls] == [["secretsmanager", "get-secret-value"], ["s3", "cp"], ["s3", "cp"]][
        : len(calls)
    ]
    for call in calls:
        names = set(call["env"])
        assert not names & {"PYTHONPATH", "pythonpath", "path", "LD_PRELOAD", "BASH_ENV", "DOCKER_HOST", "AGE"}, call
        assert call["env"]["HOME"] == str(root / "home"), "the node's HOME, not the column's"
        assert call["env"].get("AWS_SECRET_ACCESS_KEY") in (None, SECRET_KEY), "never the column's value"
        assert call["env"]["PATH"].split(":")[0] == str(root / "bin"), "PATH is the wrapper's own"
    assert not (root / "pwned").exists(), "the planted sitecustomize.py ran in clustertools' aws"


def test_columns_reach_the_command_but_not_the_secret_read_staging_or_upload(tmp_path):
    directory, env = setup(tmp_path)
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    assert len(aws_calls(tmp_path)) == 3  # the secret, the input, the upload
    assert_no_column_reached_aws(tmp_path)
    evil = tmp_path / "evil"
    assert (directory / "logs" / "sub-1.1.out").read_text() == f"{evil}|{evil}|{evil}:/usr/bin:/bin|42\n"
    assert (tmp_path / "s3" / "out" / "study" / "demo-1" / ".clustertools" / "records" / "sub-1.1.json").exists()


def test_the_debug_shell_gets_the_columns_and_its_staging_does_not(tmp_path):
    directory, env = setup(tmp_path)
    result = wrapper(directory, env, "--debug", "1", "0", stdin='echo "seen=$pythonpath|$AGE"; exit 0\n')
    assert f"seen={tmp_path / 'evil'}|42" in result.stdout, result.stderr
    assert len(aws_calls(tmp_path)) == 2  # the secret and the input; debug uploads nothing
    assert_no_column_reached_aws(tmp_path)


RECORDING_RUNTIME = """#!/bin/bash
# stand-in {name}: records its own environment, then runs the argv after the image as the container would
root=$(cd "$(dirname "$0")/.." && pwd)
env -0 >"$root/{name}-env"
while [[ $1 != {image} ]]; do shift; done
shift
[[ $1 != -- ]] || exec env "$@"  # docker: env is the entrypoint
exec "$@"
"""


# stand-in podman: records its environment for `run`, then runs the shell after the image with the env file's
# variables, as the container would; `image exists` says no, `load`, `pull`, `save` and `inspect` succeed.
RECORDING_PODMAN = """#!/bin/bash
root=$(cd "$(dirname "$0")/.." && pwd)
while [[ $1 == --* ]]; do shift 2; done
case $1 in
  image) [[ $2 == inspect ]] && echo sha256:feed; [[ $2 == inspect ]]; exit ;;
  save) while [[ $1 != -o ]]; do shift; done; echo archive > "$2"; exit 0 ;;
  pull | load) exit 0 ;;
esac
env -0 >"$root/podman-env"
echo "$*" >"$root/podman-args"
while [[ $1 != {image} ]]; do [[ $1 == --env-file ]] && envfile=$2; shift; done
shift
mapfile -t vars <"$envfile"
exec env -i PATH=/usr/bin:/bin "${{vars[@]}}" /bin/sh "$@"
"""


@pytest.mark.parametrize("runtime", ["docker", "apptainer", "podman"])
def test_the_container_runtime_never_sees_the_columns_and_the_command_in_it_does(tmp_path, runtime):
    image = "docker://ghcr.io/acme/seg:1.0"
    shared = tmp_path / "shared"
    (shared / "clustertools").mkdir(parents=True)
    (shared / "clustertools" / "bootstrap.env").write_text(f"CT_RUNTIME={runtime}\n")  # the tests run as root
    directory, env = setup(tmp_path, container=image, shared=[str(shared)])
    shown = image.removeprefix("docker://") if runtime in ("docker", "podman") else image
    script = RECORDING_PODMAN if runtime == "podman" else RECORDING_RUNTIME
    (tmp_path / "bin" / runtime).write_text(script.format(name=runtime, image=shown))
    (tmp_path / "bin" / runtime).chmod(0o755)
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    names = {entry.split("=", 1)[0] for entry in (tmp_path / f"{runtime}-env").read_text().split("\0") if entry}
    assert not names & {"PYTHONPATH", "pythonpath", "path", "LD_PRELOAD", "BASH_ENV", "DOCKER_HOST", "AGE"}
    evil = tmp_path / "evil"
    assert (directory / "logs" / "sub-1.1.out").read_text() == f"{evil}|{evil}|{evil}:/usr/bin:/bin|42\n"
    assert_no_column_reached_aws(tmp_path)
    if runtime == "podman":  # rootless in the task's cgroups, the input read-only, the image never pulled per task
        args = (tmp_path / "podman-args").read_text()
        assert "run --rm --pull=never --network=host --env-file " in args, args
        assert ":ro " in args and "--entrypoint /bin/sh ghcr.io/acme/seg:1.0 -c " in args, args
        record = json.loads(next((directory / "records" / "new").glob("sub-1.1.SUCCEEDED.json")).read_text())
        assert record["image"] == "ghcr.io/acme/seg:1.0@sha256:feed", record


def test_a_manifest_name_that_is_no_variable_name_stops_the_task(tmp_path):
    directory, env = setup(tmp_path)
    manifest = directory / "attempts" / "1" / "manifest"
    manifest.write_text(manifest.read_text().replace("AGE", "A=B", 1))
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 98 and "bad variable name" in result.stderr
    assert not (tmp_path / "aws-envs.jsonl").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.env must be root's; the tests run as root")
def test_bootstrap_env_gives_only_its_own_keys_and_cannot_steer_clustertools_steps(tmp_path):
    shared = tmp_path / "shared"
    conda = shared / "clustertools" / "envs" / "study"
    (conda / "bin").mkdir(parents=True)
    evil = tmp_path / "evil"
    (shared / "clustertools" / "bootstrap.env").write_text(
        f"CT_CONDA_ENV={conda}\nexport PYTHONPATH={evil}\nCT_PATH={evil}\nCT_ENV_ALLOWED=.\nCT_AWS=\n"
    )
    directory, env = setup(tmp_path, shared=[str(shared)])
    result = wrapper(directory, env, "1", "0")
    assert result.returncode == 0, result.stderr
    assert len(aws_calls(tmp_path)) == 3
    assert_no_column_reached_aws(tmp_path)
    for call in aws_calls(tmp_path):
        assert "PYTHONPATH" not in call["env"] and str(conda) not in call["env"]["PATH"]
