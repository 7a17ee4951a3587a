"""Inputs as researchers lay them out: only the files a task needs (storage.input_include/exclude as aws s3's
filters), and a subject's own input location from a column input_url (a prefix, or one object), checked at
submit like every value from outside. The wrapper runs here with a stand-in aws that records its arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.model.runs.input_urls import check_input_urls
from cluster_tools.model.runs.subjects import SubjectList
from tests.unit.run_fixtures import lay_out_run_dir, make_run, run_task
from tests.unit.test_config import CLUSTER, GOOD

# Records `aws s3 cp` calls (staging), gives the input one file, and copies the upload as the other tests do.
FAKE_AWS = """#!/bin/bash
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $* == *--recursive* && ${@: -2:1} != s3://* ]]; then
  mkdir -p "$root/s3" && cp -R "${@: -2:1}." "$root/s3/"; exit 0
fi
printf '%s\\n' "$*" >> "$root/staged"
mkdir -p "${@: -1}" && echo data > "${@: -1}/file"
"""


def staging_call(tmp_path: Path, **update) -> str:
    run = make_run(
        ("sub-1",), command='ls "$INPUT_DIR"', columns=update.pop("columns", ()), rows=update.pop("rows", ())
    )
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [], **update})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    done = run_task(tmp_path, directory)
    assert done.returncode == 0, done.stderr + (directory / "logs" / "sub-1.1.err").read_text()
    return (tmp_path / "staged").read_text().strip()


def test_only_the_files_a_task_needs_are_staged(tmp_path):
    call = staging_call(tmp_path, input="s3://in/abcd", input_include=["anat/*_T1w.nii.gz"], input_exclude=["*/dwi/*"])
    assert call.startswith(
        "s3 cp --quiet --recursive --exclude * --include anat/*_T1w.nii.gz --exclude */dwi/* s3://in/abcd/sub-1/ "
    ), call


@pytest.mark.parametrize(
    ("url", "how"), [("s3://abcd/raw/NDAR_1/", "--recursive"), ("s3://abcd/raw/NDAR_1/T1.nii", None)]
)
def test_a_subjects_own_input_url_is_staged_whole_or_as_one_object(tmp_path, url, how):
    call = staging_call(tmp_path, input=None, columns=("input_url",), rows=((url,),))
    assert f" {url} " in call and (how in call if how else "--recursive" not in call), call


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://abcd/raw/NDAR_1/", None),
        ("https://example.com/x", "input_url 'https://example.com/x': must be an s3:// URL"),
        ("s3://abcd/../etc/", "has a '.' or '..' part"),
        ("s3://elsewhere/raw/", "is in bucket elsewhere, which the cluster's nodes are not given read access to"),
    ],
)
def test_input_urls_are_checked_at_submit(url, message):
    project = parse_project(GOOD + CLUSTER + "  input_buckets: [abcd]\n")
    subjects = SubjectList(ids=("sub-1",), columns=("input_url",), rows=((url,),))
    if message is None:
        check_input_urls(project, subjects)
        return
    with pytest.raises(ConfigError) as info:
        check_input_urls(project, subjects)
    assert "subject sub-1:" in info.value.one_line() and message in info.value.one_line()


def test_a_filter_starting_with_a_dash_or_holding_a_newline_is_refused():
    for bad in ("--recursive", "a\nb"):
        with pytest.raises(ConfigError, match="input_include"):
            parse_project(GOOD.replace("storage:\n", f"storage:\n  input_include: [{json.dumps(bad)}]\n"))


def test_shared_inputs_are_fetched_once_per_node_and_each_task_reads_them(tmp_path):
    run = make_run(("sub-1", "sub-2"), command='cat "$SHARED_DIR/model.pt" "$SHARED_DIR/atlas/file"')
    run = run.model_copy(
        update={
            "remote_dir": str(tmp_path / "run"),
            "shared_dirs": [],
            "shared_inputs": ["s3://models/v1/model.pt", "s3://models/atlas/"],
        }
    )
    directory = lay_out_run_dir(
        tmp_path,
        run,
        FAKE_AWS.replace(
            'mkdir -p "${@: -1}" && echo data > "${@: -1}/file"',
            'if [[ $* == *--recursive* ]]; then mkdir -p "${@: -1}" && echo data > "${@: -1}/file"; '
            'else echo weights > "${@: -1}"; fi',
        ),
    )
    for task in ("0", "1"):
        done = run_task(tmp_path, directory, task)
        assert done.returncode == 0, done.stderr
    calls = (tmp_path / "staged").read_text().splitlines()
    assert calls == [
        f"s3 cp --quiet s3://models/v1/model.pt {tmp_path}/scratch/clustertools-shared-{os.getuid()}/"
        f"{run.run_id}.partial/model.pt",
        f"s3 cp --quiet --recursive s3://models/atlas/ {tmp_path}/scratch/clustertools-shared-"
        f"{os.getuid()}/{run.run_id}.partial/atlas/",
    ], calls
    assert (directory / "logs" / "sub-2.1.out").read_text() == "weights\ndata\n"


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        (["s3://models"], "an object or prefix inside a bucket"),
        (["s3://bucket-a/x/model.pt", "s3://bucket-b/y/model.pt"], "a last name of its own"),
    ],
)
def test_shared_inputs_need_names_of_their_own(urls, message):
    with pytest.raises(ConfigError, match=message):
        parse_project(GOOD.replace("storage:\n", f"storage:\n  shared_inputs: {json.dumps(urls)}\n"))
