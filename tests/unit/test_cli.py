"""The CLI's promises: grouped help, light start-up, one Error line, tracebacks only with --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cluster_tools.errors import MissingDependency
from cluster_tools.services.sandbox.sandbox_files import find_programs
from tests.helpers import err, out, run_cli


def test_help_lists_the_command_groups(state_dir):
    result = run_cli("--help", state=state_dir)
    assert result.returncode == 0
    for heading in ("Start here:", "Clusters:", "Runs:"):
        assert heading in out(result)
    for command in (
        "init",
        "sandbox",
        "list",
        "register",
        "ssh",
        "submit",
        "status",
        "logs",
        "cancel",
        "runs",
        "resubmit",
    ):
        assert f"  {command} " in out(result)


def test_help_imports_no_heavy_library():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cluster_tools", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"boto3", "botocore", "paramiko", "pcluster", "moto", "rich"}


@pytest.mark.parametrize(
    "command",
    [
        [c, "--help"]
        for c in ("sandbox", "ssh", "register", "init", "submit", "status", "logs", "cancel", "runs", "resubmit")
    ],
)
def test_every_command_has_help_with_examples(state_dir, command):
    result = run_cli(*command, state=state_dir)
    assert result.returncode == 0 and "Examples:" in out(result)


def test_a_user_error_is_one_line_with_a_hint_and_no_traceback(state_dir):
    result = run_cli("ssh", "-c", "nope", "--", "true", state=state_dir)
    assert result.returncode == 1
    lines = err(result).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no cluster named 'nope'") and "hint:" in lines[0]
    assert "Traceback" not in err(result)


def test_debug_shows_the_traceback(state_dir):
    result = run_cli("--debug", "ssh", "-c", "nope", "--", "true", state=state_dir)
    assert result.returncode == 1 and "Traceback" in err(result) and "ClusterNotFound" in err(result)


def test_no_cluster_known_says_how_to_get_one(state_dir):
    result = run_cli("ssh", "--", "true", state=state_dir)
    assert result.returncode == 1 and "sandbox up" in err(result)


def test_a_broken_project_file_is_reported_with_its_line(tmp_path, state_dir):
    (tmp_path / "clustertools.yaml").write_text("name: ok\nstorage:\n  output: s3://b-1\njob:\n  cpus: many\n")
    result = run_cli("ssh", "--", "true", state=state_dir, cwd=tmp_path)
    assert result.returncode == 1
    assert "clustertools.yaml:5: job.cpus" in err(result) and len(err(result).strip().splitlines()) == 1


def test_list_and_forget_on_an_empty_state(state_dir):
    assert "no clusters yet" in out(run_cli("list", state=state_dir))
    assert run_cli("list", "--json", state=state_dir).stdout.strip() == b"[]"
    assert run_cli("forget", "x", state=state_dir).returncode == 1


def test_python_dash_m_and_version(state_dir):
    result = run_cli("--version", state=state_dir)
    assert result.returncode == 0 and "clustertools" in out(result)


def test_missing_debian_packages_name_the_apt_get_line(tmp_path):
    with pytest.raises(MissingDependency) as info:
        find_programs({"PATH": str(tmp_path)}, system_dirs=())
    assert "apt-get install -y slurm-wlm munge openssh-server" in info.value.one_line()
