"""The project file: typed model, errors that name the line and key, hostile values."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from cluster_tools.config import S3Location, find_project_file, load_project, parse_project
from cluster_tools.errors import ConfigError

GOOD = """\
name: study
cluster: sandbox
storage:
  output: s3://my-bucket/results
job:
  command: echo hi
  cpus: 4
  mem: 8G
  time: "02:00:00"
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_project(text)
    return info.value.one_line()


def test_a_good_file_loads_into_typed_values():
    project = parse_project(GOOD)
    assert project.storage.output == S3Location(bucket="my-bucket", prefix="results")
    assert project.job.cpus == 4 and project.job.mem == "8G" and project.cluster == "sandbox"


def test_a_bad_value_names_the_line_and_key():
    message = error_of(GOOD.replace("cpus: 4", "cpus: four"))
    assert message.startswith("clustertools.yaml:7: job.cpus: Input should be a valid integer")


def test_an_unknown_key_is_refused_with_its_line():
    assert "clustertools.yaml:10: job.cpu: unknown key" in error_of(GOOD + "  cpu: 2\n")


def test_a_missing_key_names_the_parent_line():
    assert error_of("name: x\n").startswith("clustertools.yaml:1: storage: Field required")


def test_every_problem_is_reported_on_one_line():
    message = error_of(GOOD.replace("cpus: 4", "cpus: 0").replace("mem: 8G", "mem: lots"))
    assert "job.cpus" in message and "job.mem" in message and "\n" not in message


def test_a_duplicate_key_is_refused():
    assert "clustertools.yaml:2: name: key given twice" in error_of("name: a\nname: b\nstorage: {output: s3://b-1}\n")


@pytest.mark.parametrize("text, expected", [
    ("", "expected a mapping"),
    ("- a\n- b\n", "expected a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
    ("name: 'a;rm -rf ~'\nstorage: {output: s3://b-1}\n", "name:"),
    ("name: '$(id)'\nstorage: {output: s3://b-1}\n", "name:"),
    ("name: ok\nstorage: {output: 's3://b-1/x'}\ncluster: 'bad name'\n", "cluster:"),
    ("name: ok\nstorage: {output: 'http://b-1/x'}\n", "must be an s3:// URL"),
    ("name: ok\nstorage: {output: 's3://Bad_Bucket'}\n", "not a valid S3 bucket name"),
    ("name: ok\nstorage: {output: s3://b-1}\njob: {time: 'soon'}\n", "job.time"),
    ("name: ok\nstorage: {output: s3://b-1}\njob: {partition: 'a b'}\n", "job.partition"),
])
def test_hostile_and_broken_files_give_one_clear_line(text: str, expected: str):
    message = error_of(text)
    assert expected in message and "\n" not in message


def test_crlf_and_bom_are_tolerated(tmp_path):
    path = tmp_path / "clustertools.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert load_project(path).name == "study"


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_project(tmp_path / "missing.yaml")


def test_the_project_file_is_found_in_a_parent_dir(tmp_path):
    (tmp_path / "clustertools.yaml").write_text(GOOD)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_file(deep) == tmp_path / "clustertools.yaml"
    assert find_project_file(tmp_path.parent) is None or find_project_file(tmp_path.parent) != tmp_path


@given(st.text(max_size=40))
def test_no_text_crashes_the_loader(text: str):
    try:
        parse_project(text)
    except ConfigError:
        pass


def test_loading_does_not_change_once_pcluster_patched_yaml():
    """pcluster's yaml_load patches SafeLoader process-wide; the project file must load the same after."""
    from pcluster.utils import yaml_load

    yaml_load("a: 1")
    assert "name: key given twice" in error_of("name: a\nname: b\nstorage: {output: s3://b-1}\n")
    assert parse_project(GOOD).name == "study"
