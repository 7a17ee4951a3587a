"""Tasks in enroot, the runtime ParallelCluster's AMIs ship: the wrapper unpacks the .sqsh the node bootstrap
imported once (bootstrap.env: CT_RUNTIME=enroot, CT_IMAGE_FILE) under a name of the task's own, starts it with
the scratch dir mounted and the task's environment set inside by `env --` as the other runtimes do, gives it the
job's GPUs (NVIDIA_VISIBLE_DEVICES, read by enroot's nvidia hook), removes it after; and `debug SUBJECT` gets
the same container. Run by bash with a stand-in `enroot` (enroot is not installed here) that records its calls
and the environment it was given, and runs `start`'s rc script with the argv as enroot would. The tests run as
root, as the bootstrap does, so the bootstrap.env they write is root's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.run_fixtures import lay_out_run_dir, make_run

IMAGE = "docker://ghcr.io/acme/seg@sha256:" + "e" * 64
FAKE_AWS = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'
FAKE_ENROOT = r"""#!/bin/bash
# stand-in enroot: one line per call (its argv, and the variables that steer enroot), its environment kept
root=$(cd "$(dirname "$0")/.." && pwd)
paths="data=$ENROOT_DATA_PATH run=$ENROOT_RUNTIME_PATH cache=$ENROOT_CACHE_PATH"
echo "$* | $paths gpus=$NVIDIA_VISIBLE_DEVICES" >>"$root/calls"
env -0 >"$root/enroot-env.$1"
case $1 in
  create) [[ $2 == --name && -r $4 ]] && mkdir -p "$ENROOT_DATA_PATH/$3" ;;
  remove) rm -rf "${ENROOT_DATA_PATH:?}/$3" ;;
  start) shift; while [[ $1 == --* ]]; do [[ $1 == --rc ]] && rc=$2; shift 2; done
         [[ -d $ENROOT_DATA_PATH/$1 ]] || { echo "no container $1" >&2; exit 1; }
         shift; exec env -i PATH=/usr/bin:/bin bash "$rc" "$@" ;;  # enroot starts from the image's environment
esac
"""
# Names a column could take to steer enroot, were the columns in its environment.
COLUMNS = ("ENROOT_DATA_PATH", "NVIDIA_VISIBLE_DEVICES", "ENROOT_REMAP_ROOT", "LR")
COMMAND = 'echo "in=$SUBJECT|$LR|$NVIDIA_VISIBLE_DEVICES|$ENROOT_REMAP_ROOT"; echo done > "$OUTPUT_DIR/x"'
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.env must be root's; the tests run as root")


def setup(tmp_path: Path, *, container: str = IMAGE, command: str = COMMAND, gpus: int = 0) -> Path:
    shared = tmp_path / "shared" / "clustertools"
    sqsh = shared / "images" / "seg.sqsh"
    sqsh.parent.mkdir(parents=True)
    sqsh.write_text("not really a squashfs")
    (shared / "bootstrap.env").write_text(
        f"CT_RUNTIME=enroot\nCT_IMAGE={IMAGE.replace(':', chr(92) + ':')}\nCT_IMAGE_FILE={sqsh}\n"
    )
    run = make_run(
        ("sub-1",),
        command=command,
        container=container,
        gpus=gpus,
        columns=COLUMNS,
        rows=(("/evil", "0,1,2,3", "y", "0.1"),),
    )
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [str(tmp_path / "shared")]})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (tmp_path / "bin" / "enroot").write_text(FAKE_ENROOT)
    (tmp_path / "bin" / "enroot").chmod(0o755)
    (tmp_path / "scratch").mkdir()
    return directory


def wrapper(directory: Path, *args: str, env: dict[str, str] | None = None, stdin: str = ""):
    root = directory.parent
    base = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(root / "scratch"),
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
        "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS": "0",
    }
    return subprocess.run(
        ["bash", str(directory / "wrapper.sh"), *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=directory,
        timeout=60,
        input=stdin,
    )


def calls(directory: Path) -> list[str]:
    return (directory.parent / "calls").read_text().splitlines()


def record(directory: Path) -> dict:
    return json.loads(next((directory / "records" / "new").glob("sub-1.1.[SF]*.json")).read_text())


def test_the_task_runs_in_the_image_the_bootstrap_imported_under_a_name_of_its_own(tmp_path):
    directory = setup(tmp_path)
    result = wrapper(directory, "1", "0")
    assert result.returncode == 0, result.stderr
    create, start, remove = calls(directory)
    name = create.split()[2]
    scratch = Path(start.split()[2]).parent.parent  # --rc <scratch>/.enroot/rc
    assert name.startswith("clustertools-7_0-") and scratch.parent == tmp_path / "scratch"
    enroot_dirs = f"data={scratch}/.enroot/data run={scratch}/.enroot/run cache={scratch}/.enroot/cache"
    assert create == f"create --name {name} {tmp_path}/shared/clustertools/images/seg.sqsh | {enroot_dirs} gpus=void"
    assert start.startswith(
        f"start --rc {scratch}/.enroot/rc --mount {scratch}:{scratch}:none:x-create=dir,bind "
        f"{name} env -- SUBJECT=sub-1 ENROOT_DATA_PATH=/evil NVIDIA_VISIBLE_DEVICES=0,1,2,3 "
    )
    assert start.endswith(f"bash -c {COMMAND} | {enroot_dirs} gpus=void")
    assert remove == f"remove --force {name} | {enroot_dirs} gpus=void"
    # The columns reach the command inside (set by env --), never enroot: it ran with the wrapper's values.
    assert (directory / "logs" / "sub-1.1.out").read_text() == "in=sub-1|0.1|0,1,2,3|y\n"
    enroot_env = dict(e.split("=", 1) for e in (tmp_path / "enroot-env.start").read_text().split("\0") if e)
    assert "ENROOT_REMAP_ROOT" not in enroot_env and "LR" not in enroot_env
    assert record(directory)["state"] == "SUCCEEDED"
    assert (tmp_path / "s3" / "sub-1" / "x").read_text() == "done\n"
    assert os.listdir(tmp_path / "scratch") == [], "the container goes with the scratch dir"


def test_the_commands_exit_code_is_the_tasks_and_the_container_is_removed_all_the_same(tmp_path):
    directory = setup(tmp_path, command="exit 3")
    result = wrapper(directory, "1", "0")
    assert result.returncode == 3 and record(directory)["exit_code"] == 3
    assert calls(directory)[-1].startswith("remove --force clustertools-7_0-")


@pytest.mark.parametrize(
    ("gpus", "env", "visible"),
    [
        (1, {"SLURM_JOB_GPUS": "2,3"}, "2,3"),
        (1, {"CUDA_VISIBLE_DEVICES": "1"}, "1"),
        (1, {}, "all"),
        (0, {"SLURM_JOB_GPUS": "0"}, "void"),  # a CPU task sees no GPU, whatever the image asks for
    ],
)
def test_enroots_nvidia_hook_is_given_exactly_the_jobs_gpus(tmp_path, gpus, env, visible):
    directory = setup(tmp_path, gpus=gpus)
    assert wrapper(directory, "1", "0", env=env).returncode == 0
    assert all(call.endswith(f" gpus={visible}") for call in calls(directory))


def test_another_image_than_the_one_imported_is_refused_without_a_pull(tmp_path):
    directory = setup(tmp_path, container="docker://ghcr.io/acme/other:2.0")
    result = wrapper(directory, "1", "0")
    assert result.returncode == 126 and record(directory)["exit_code"] == 126
    assert "enroot runs the image the node bootstrap imported" in (directory / "logs" / "sub-1.1.err").read_text()
    assert not (tmp_path / "calls").exists()


def test_debug_opens_the_shell_in_the_same_container_and_removes_it(tmp_path):
    directory = setup(tmp_path)
    result = wrapper(
        directory,
        "--debug",
        "1",
        "0",
        env={"SLURM_JOB_ID": "42"},
        stdin='echo "S=$SUBJECT|$LR"; test -d "$OUTPUT_DIR" && echo out-ok; exit 4\n',
    )
    assert result.returncode == 4, result.stderr
    assert "S=sub-1|0.1" in result.stdout and "out-ok" in result.stdout
    create, start, remove = calls(directory)
    name = create.split()[2]
    assert name.startswith("clustertools-42-") and f" {name} env -- " in start and "bash --rcfile " in start
    assert remove.startswith(f"remove --force {name} ")
    assert not (directory / "records" / "new").exists() or os.listdir(directory / "records" / "new") == []
    assert os.listdir(tmp_path / "scratch") == []
