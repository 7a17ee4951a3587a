"""job.workdir: the project's code, packed the same way every time (its sha256 names it), refused in one line
when it cannot be code, and each task's working directory (a copy of its own) when the wrapper runs."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.runs.workdir import pack_workdir
from tests.unit.run_fixtures import lay_out_run_dir, make_run, run_task


def code(tmp_path: Path) -> Path:
    project = tmp_path / "study"
    (project / "code" / "lib").mkdir(parents=True)
    (project / "code" / "job.sh").write_text('echo "job for $SUBJECT in $(pwd)" > "$OUTPUT_DIR/out.txt"\n')
    (project / "code" / "lib" / "params.txt").write_text("lr=0.1\n")
    (project / "code" / ".git").mkdir()
    (project / "code" / ".git" / "HEAD").write_text("ref\n")
    (project / "code" / "lib" / "same").symlink_to("params.txt")
    return project


def test_the_same_code_packs_to_the_same_bytes_without_version_control(tmp_path):
    project = code(tmp_path)
    first = pack_workdir(project, "code")
    os.utime(project / "code" / "job.sh", (1, 1))  # a touched file is the same code
    again = pack_workdir(project, "code/")
    assert first.sha256 == again.sha256 and first.files == 2
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first.data))) as tar:
        assert sorted(tar.getnames()) == ["job.sh", "lib", "lib/params.txt", "lib/same"]
        assert {m.uid for m in tar.getmembers()} == {0}
    (project / "code" / "job.sh").write_text("echo changed\n")
    assert pack_workdir(project, "code").sha256 != first.sha256


@pytest.mark.parametrize(
    ("setup", "relative", "message"),
    [
        (None, "missing", "job.workdir missing is not a directory"),
        ("outside", "code", "links outside it"),
        ("big", "code", "holds 0.0 MiB; code sent with a run may be at most 0 MiB"),
    ],
)
def test_what_cannot_be_code_is_one_line(tmp_path, setup, relative, message):
    project = code(tmp_path)
    if setup == "outside":
        (project / "code" / "secrets").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError) as info:
        pack_workdir(project, relative, max_bytes=10 if setup == "big" else 10**8)
    assert message in info.value.one_line()


def test_a_path_leaving_the_project_is_refused_by_the_model_and_at_packing(tmp_path):
    from pydantic import ValidationError

    from cluster_tools.model.project.project_config import JobSpec

    for bad in ("../other", "/etc", "code/../../x", "a b"):
        with pytest.raises(ValidationError):
            JobSpec(command="true", workdir=bad)
    project = code(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (project / "escape").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="outside the project's directory"):
        pack_workdir(project, "escape")


def test_each_task_works_in_a_copy_of_the_code(tmp_path):
    project = code(tmp_path)
    run = make_run(("sub-1",), command="bash job.sh && cat lib/params.txt && touch written-here")
    run = run.model_copy(
        update={
            "remote_dir": str(tmp_path / "run"),
            "shared_dirs": [],
            "job": run.job.model_copy(update={"workdir": "code"}),
        }
    )
    fake_aws = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'
    directory = lay_out_run_dir(tmp_path, run, fake_aws)
    (directory / "workdir").mkdir()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(pack_workdir(project, "code").data))) as tar:
        tar.extractall(directory / "workdir")
    done = run_task(tmp_path, directory)
    assert done.returncode == 0, done.stderr + (directory / "logs" / "sub-1.1.err").read_text()
    out = (tmp_path / "s3" / "sub-1" / "out.txt").read_text()
    assert out.startswith("job for sub-1 in ") and out.rstrip().endswith("/work"), out
    assert (directory / "logs" / "sub-1.1.out").read_text() == "lr=0.1\n"
    assert not (directory / "workdir" / "written-here").exists(), "the shared copy stays as it was sent"
    record = json.loads(next((directory / "records" / "new").glob("sub-1.1.SUCCEEDED.json")).read_text())
    assert record["state"] == "SUCCEEDED"
