"""`clustertools sandbox bootstrap` without a sandbox: the settings it runs with, and what it refuses.
(The runs themselves are in tests/integration/test_bootstrap_sandbox.py.)"""

from __future__ import annotations

import shlex

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.render.sandbox_layout import SandboxPaths
from cluster_tools.services.sandbox.sandbox_bootstrap import SandboxNodeFiles, image_for, remote_command, settings_for
from tests.helpers import err, run_cli

SHA = "ab" * 32
PROJECT = f"""\
name: study
storage:
  output: s3://clustertools-sandbox/study
job:
  container: docker://ghcr.io/acme/seg:1.0
bootstrap:
  miniforge_url: s3://mirror/Miniforge3.sh
  miniforge_sha256: {SHA}
  env_file: envs/study.yml
"""


def test_the_command_line_overrides_the_projects_settings_and_is_checked_the_same_way(tmp_path):
    project = parse_project(PROJECT)
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "study.yml").write_text("name: study\n")
    settings, env = settings_for(
        project, miniforge_url=None, miniforge_sha256="CD" * 32, env_file=None, project_dir=tmp_path
    )
    assert settings.miniforge_url == "s3://mirror/Miniforge3.sh" and settings.miniforge_sha256 == "cd" * 32
    assert env == tmp_path / "envs" / "study.yml" and settings.env_file_key == "env/study.yml"
    with pytest.raises(ConfigError, match="--miniforge-sha256: must be the installer's sha256"):
        settings_for(project, miniforge_url=None, miniforge_sha256="12", env_file=None, project_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        settings_for(project, miniforge_url=None, miniforge_sha256=None, env_file=None, project_dir=tmp_path / "x")
    bare, none = settings_for(None, miniforge_url=None, miniforge_sha256=None, env_file=None, project_dir=None)
    assert bare.miniforge_url is None and none is None


def test_the_projects_image_is_pulled_only_with_a_runtime():
    project, notes = parse_project(PROJECT), []
    assert image_for(project, None, "apptainer", notes) == "docker://ghcr.io/acme/seg:1.0" and not notes
    assert image_for(project, None, "none", notes) is None and "is not pulled with --runtime none" in notes[0]
    with pytest.raises(ConfigError, match="needs a container runtime"):
        image_for(project, "alpine:3.19", "none", [])
    with pytest.raises(ConfigError, match="--image: "):
        image_for(project, "alpine; id", "apptainer", [])


def test_the_remote_command_keeps_every_value_one_word(tmp_path):
    files = SandboxNodeFiles(SandboxPaths(root=tmp_path / "sandbox", runtime=tmp_path / "run"))
    command = remote_command(
        files,
        "s3://b/clustertools/sandbox/bootstrap/on-node-configured.sh",
        "http://127.0.0.1:5000",
        ["--project", "study", "--image", "x:1"],
    )
    words = shlex.split(command)
    assert words[:2] == ["bash", "-c"] and words[3:11] == [
        "sandbox-bootstrap",
        "s3://b/clustertools/sandbox/bootstrap/on-node-configured.sh",
        str(files.script),
        str(files.cfnconfig),
        str(files.state),
        str(files.output),
        "http://127.0.0.1:5000",
        "ec2-user",
    ]
    assert words[11:] == ["--project", "study", "--image", "x:1"]
    assert all(str(p).startswith(str(tmp_path)) for p in (files.script, files.state, files.shared, files.log))


def test_without_a_running_sandbox_it_says_so_in_one_line(tmp_path):
    result = run_cli("sandbox", "bootstrap", state=tmp_path / "state", cwd=tmp_path)
    assert result.returncode == 1
    assert err(result).strip() == "Error: the sandbox is not running (hint: start it: clustertools sandbox up)"
