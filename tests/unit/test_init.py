"""`clustertools init`: the example it writes loads, matches the golden file, never clobbers."""

from __future__ import annotations

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import load_project
from cluster_tools.services.project.project_init import init_project, project_name_for, render_project_file
from tests.helpers import assert_golden, err, out, run_cli


def test_the_example_project_file_matches_the_golden_file():
    assert_golden(
        "init_clustertools.yaml", render_project_file("my-study", "sandbox", "s3://clustertools-sandbox/my-study")
    )


def test_init_writes_a_loadable_project_and_a_subject_list(tmp_path, state_dir):
    result = run_cli("init", str(tmp_path / "study"), state=state_dir)
    assert result.returncode == 0, err(result)
    project = load_project(tmp_path / "study" / "clustertools.yaml")
    assert project.name == "study" and project.cluster == "sandbox"
    assert str(project.storage.output) == "s3://clustertools-sandbox/study"
    assert "sub-0001" in (tmp_path / "study" / "subjects.txt").read_text()
    assert "wrote" in out(result)


def test_init_refuses_to_overwrite_without_force(tmp_path):
    init_project(tmp_path, name="a", cluster="sandbox", output=None, force=False)
    with pytest.raises(ConfigError, match="already exist"):
        init_project(tmp_path, name="b", cluster="sandbox", output=None, force=False)
    assert load_project(tmp_path / "clustertools.yaml").name == "a"
    init_project(tmp_path, name="b", cluster="sandbox", output=None, force=True)
    assert load_project(tmp_path / "clustertools.yaml").name == "b"


@pytest.mark.parametrize(
    "name, output",
    [
        ("a;rm -rf ~", None),
        ("$(id)", None),
        ("ok", "s3://bucket/x\njob: {cpus: 99}"),
        ("ok", "s3://bucket/x' # "),
    ],
)
def test_hostile_values_never_reach_the_file(tmp_path, name, output):
    with pytest.raises(ConfigError):
        init_project(tmp_path, name=name, cluster="sandbox", output=output, force=False)
    assert not (tmp_path / "clustertools.yaml").exists()


@pytest.mark.parametrize("dirname, expected", [("My Study!", "My-Study"), ("...", "project"), ("abc", "abc")])
def test_project_names_are_made_safe_from_dir_names(tmp_path, dirname, expected):
    assert project_name_for(tmp_path / dirname) == expected


def test_the_commented_bootstrap_example_validates_once_uncommented():
    text = render_project_file("my-study", "sandbox", "s3://clustertools-sandbox/my-study")
    lines = text.splitlines()
    start = lines.index("# bootstrap:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])
    uncommented = "\n".join(lines[:start] + block + lines[start + len(block) :]) + "\n"
    from cluster_tools.model.project.project_config import parse_project

    settings = parse_project(uncommented).bootstrap
    assert settings.miniforge_url.startswith("s3://") and len(settings.miniforge_sha256) == 64
    assert settings.env_file == "environment.yml" and settings.env_file_key == "env/environment.yml"
