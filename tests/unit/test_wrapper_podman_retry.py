"""Rootless podman, several tasks of one user on one node: a `podman run --rm` may exit 1 before any container
exists, asking for `podman system migrate` (a CI run: 'invalid internal status, try resetting the pause process
with "podman system migrate": cannot read ".../run/vfs-containers/..."'). The wrapper then runs the same command once
more, and never migrates (that would stop the other tasks' containers); any other failure is passed on as it was. Run
by bash with a stand-in `podman` (not installed here) that logs its calls and runs the command after the image as
the container would. The tests run as root, as the bootstrap does, so the
bootstrap.env they write is root's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run
from tests.unit.test_wrapper_clean_env import FAKE_AWS

IMAGE = "ghcr.io/acme/seg:1.0"
COMMAND = 'echo "out $SUBJECT"; echo "err $SUBJECT" >&2'
# podman's own words (libpod's SetupRootless, logged by logrus, then exit 1), for a container removed meanwhile
MIGRATE = (
    'time="2026-11-22T05:00:01Z" level=error msg="invalid internal status, try resetting the pause process '
    'with \\"podman system migrate\\": cannot read \\"{base}/run/vfs-containers/0123abcd/userdata/conmon.pid\\"'
    ': open {base}/run/vfs-containers/0123abcd/userdata/conmon.pid: no such file or directory"'
)
NOT_KNOWN = f"Error: {IMAGE}: image not known"

# stand-in podman: `run` fails as FAILS says (the first N runs, or every run with "always") with the stderr in the
# file `message` and exit CODE, else runs the shell after the image with the env file's variables; `system ...` is
# logged (it must never be called).
FAKE_PODMAN = r"""#!/bin/bash
root=$(cd "$(dirname "$0")/.." && pwd)
while [[ $1 == --* ]]; do shift 2; done
case $1 in
  image) [[ $2 == inspect ]] && echo sha256:feed; [[ $2 == inspect ]]; exit ;;
  save) while [[ $1 != -o ]]; do shift; done; echo archive >"$2"; exit 0 ;;
  pull | load) exit 0 ;;
  system)
    echo "system $2" >>"$root/calls"
    exit 0 ;;
esac
printf '%s\n' "$*" >>"$root/calls"
runs=$(grep -c '^run ' "$root/calls")
if [[ {fails} == always || $runs -le {fails} ]]; then
  cat "$root/message" >&2
  exit {code}
fi
while [[ $1 != {image} ]]; do [[ $1 == --env-file ]] && envfile=$2; shift; done
shift
mapfile -t vars <"$envfile"
exec env -i PATH=/usr/bin:/bin "${{vars[@]}}" /bin/sh "$@"
"""


def run_task_in_podman(tmp_path: Path, *, fails: str, message: str = MIGRATE, code: int = 1, command: str = COMMAND):
    run = make_run(("sub-1",), command=command, container=f"docker://{IMAGE}")
    shared = tmp_path / "shared"
    (shared / "clustertools").mkdir(parents=True)
    (shared / "clustertools" / "bootstrap.env").write_text("CT_RUNTIME=podman\n")
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [str(shared)]})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    podman = tmp_path / "bin" / "podman"
    podman.write_text(FAKE_PODMAN.format(fails=fails, code=code, image=IMAGE))
    podman.chmod(0o755)
    base = tmp_path / "scratch" / f"clustertools-podman-{os.getuid()}"  # the wrapper's CT_PODMAN_BASE
    (tmp_path / "message").write_text(message.replace("{base}", str(base)) + "\n")
    for name in ("scratch", "home"):
        (tmp_path / name).mkdir()
    result = subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=60,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "HOME": str(tmp_path / "home"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
            "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "0",
        },
    )
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    records = list((directory / "records" / "new").glob("sub-1.1.*.json"))
    final = [json.loads(p.read_text()) for p in records if not p.name.endswith(".RUNNING.json")]
    assert len(final) == 1, (result.stderr, [p.name for p in records])
    return result, calls, final[0], directory / "logs" / "sub-1.1"


def runs(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("run ")]


def test_podman_that_could_not_join_its_namespaces_runs_once_more_without_migrate(tmp_path):
    result, calls, record, log = run_task_in_podman(tmp_path, fails="1")
    assert result.returncode == 0, result.stderr + Path(f"{log}.err").read_text()
    assert record["state"] == "SUCCEEDED" and record["exit_code"] == 0, record
    assert not [c for c in calls if c.startswith("system ")], "migrate would stop the other tasks' containers"
    first, again = runs(calls)
    assert first == again and first.startswith("run --rm --pull=never "), calls
    assert Path(f"{log}.out").read_text() == "out sub-1\n", "the command ran once"
    err = Path(f"{log}.err").read_text()
    assert "invalid internal status, try resetting the pause process" in err, "podman's failure still in the log"
    assert err.index("invalid internal status") < err.index("running it once more") < err.index("err sub-1")


def test_podman_failing_so_again_fails_the_task_with_its_message(tmp_path):
    result, calls, record, log = run_task_in_podman(tmp_path, fails="always")
    assert result.returncode == 1, result.stderr
    assert len(runs(calls)) == 2 and not [c for c in calls if c.startswith("system ")], "once more, no further"
    assert record["state"] == "FAILED" and record["exit_code"] == 1, record
    assert (
        'invalid internal status, try resetting the pause process with \\"podman system migrate\\"' in record["error"]
    ), record
    assert Path(f"{log}.err").read_text().count("invalid internal status") == 2, "both podman's failures are logged"


@pytest.mark.parametrize(("message", "code"), [(NOT_KNOWN, 125), ("Error: OCI runtime error: crun: oops", 126)])
def test_any_other_podman_failure_passes_through_without_migrate_or_retry(tmp_path, message, code):
    result, calls, record, log = run_task_in_podman(tmp_path, fails="always", message=message, code=code)
    assert result.returncode == code, result.stderr
    assert len(runs(calls)) == 1 and not [c for c in calls if c.startswith("system ")], calls
    assert record["state"] == "FAILED" and record["exit_code"] == code, record
    assert record["error"] == f"last line on stderr: {message}", record
    err = Path(f"{log}.err").read_text()
    assert err.endswith(message + "\n") and "once more" not in err, err


def test_a_command_that_fails_in_the_container_is_not_run_again(tmp_path):
    """The container started: its own exit code and stderr are the task's, and nothing is retried."""
    result, calls, record, _ = run_task_in_podman(tmp_path, fails="0", command='echo "$SUBJECT: exit 3" >&2; exit 3')
    assert result.returncode == 3, result.stderr
    assert len(runs(calls)) == 1 and not [c for c in calls if c.startswith("system ")], calls
    assert record["exit_code"] == 3 and record["error"] == "last line on stderr: sub-1: exit 3", record
