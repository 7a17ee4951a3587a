"""`clustertools validate` and `clustertools render cluster`, run as a user runs them, offline."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cluster_tools.transport.pcluster_schema import validate_cluster_config
from tests.helpers import err, out, run_cli


@pytest.fixture
def project(tmp_path, state_dir):
    result = run_cli("init", str(tmp_path / "study"), state=state_dir)
    assert result.returncode == 0, err(result)
    return tmp_path / "study"


def test_a_fresh_project_validates_given_the_callers_address(project, state_dir):
    result = run_cli("validate", "--allowed-ip", "203.0.113.7/32", state=state_dir, cwd=project)
    assert result.returncode == 0, err(result)
    assert out(result).startswith("ok: study (spot-cpu, us-east-1) passes ParallelCluster's schema")


@pytest.mark.parametrize("template", ["spot-cpu", "ondemand-gpu"])
def test_render_prints_the_config_that_passes_validation(project, state_dir, template):
    result = run_cli(
        "render", "cluster", "--allowed-ip", "203.0.113.7", "--template", template, state=state_dir, cwd=project
    )
    assert result.returncode == 0 and err(result) == ""
    config = yaml.safe_load(out(result))
    assert config["HeadNode"]["Ssh"]["AllowedIps"] == "203.0.113.7/32"
    assert config["Tags"][0] == {"Key": "project", "Value": "study"}
    assert validate_cluster_config(out(result), "study", "us-east-1") == []


def test_without_an_address_render_says_so_and_validate_fails_with_one_line(project, state_dir):
    rendered = run_cli("render", "cluster", state=state_dir, cwd=project)
    assert rendered.returncode == 0
    assert "cannot be learned offline" in err(rendered) and "never falls back to 0.0.0.0/0" in err(rendered)
    assert yaml.safe_load(out(rendered))["HeadNode"]["Ssh"]["AllowedIps"] == "YOUR-PUBLIC-IP/32"
    checked = run_cli("validate", state=state_dir, cwd=project)
    assert checked.returncode == 1
    assert out(checked).splitlines() == [out(checked).strip()]
    assert out(checked).startswith("HeadNode.Ssh.AllowedIps: your public address is unknown offline")
    assert err(checked).startswith("Error: 1 problem(s) in the ParallelCluster config of study")


def test_the_world_given_on_the_command_line_is_a_problem(project, state_dir):
    result = run_cli("validate", "--allowed-ip", "0.0.0.0/0", state=state_dir, cwd=project)
    assert result.returncode == 1 and out(result).startswith("HeadNode.Ssh.AllowedIps: 0.0.0.0/0 opens SSH")


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "    - name: spot\n",
            "    - name: spot!\n",
            "clustertools.yaml:54: parallelcluster.queues[0].name: queue names",
        ),
        (
            "      max_count: 10 ",
            "      max_count: ten ",
            "clustertools.yaml:56: parallelcluster.queues[0].max_count: Input should",
        ),
    ],
)
def test_a_hostile_project_value_is_one_line_naming_its_line(project, state_dir, old, new, expected):
    path = project / "clustertools.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    for args in (("validate", "--allowed-ip", "203.0.113.7"), ("render", "cluster")):
        result = run_cli(*args, state=state_dir, cwd=project)
        assert result.returncode == 1 and out(result) == ""
        lines = err(result).strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "  subnet_id: subnet-0123456789abcdef0",
            "  subnet_id: subnet-0123456789abcdef0\n  os: rocky9",
            "clustertools.yaml:50: parallelcluster.os: ParallelCluster 3.",
        ),
        (
            "[c6i.xlarge, c5.xlarge]",
            "[c6i.xlarge, c5.2xlarge]",
            "clustertools.yaml:55: parallelcluster.queues[0].instance_types: the instance types of one queue must "
            "have the same vCPUs (4 vCPUs: c6i.xlarge; 8 vCPUs: c5.2xlarge) (hint: ",
        ),
    ],
)
def test_validate_refuses_what_the_installed_parallelcluster_would_with_one_line(
    project, state_dir, old, new, expected
):
    path = project / "clustertools.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    result = run_cli("validate", "--allowed-ip", "203.0.113.7", state=state_dir, cwd=project)
    assert result.returncode == 1 and out(result) == ""
    [line] = err(result).strip().splitlines()
    assert line.startswith(f"Error: {path}:") and expected in line, line


def test_a_vcpu_check_that_cannot_be_made_is_a_note_and_validate_passes(project, state_dir):
    path = project / "clustertools.yaml"
    path.write_text(path.read_text().replace("[c6i.xlarge, c5.xlarge]", "[c6i.xlarge, c6in.xlarge]", 1))
    result = run_cli("validate", "--allowed-ip", "203.0.113.7", state=state_dir, cwd=project)
    assert result.returncode == 0 and out(result).startswith("ok: study")
    assert err(result) == (
        f"note: {path}:55: parallelcluster.queues[0].instance_types: equal vCPUs could "
        "not be checked: c6in.xlarge not in clustertools' price table (cluster_tools/data/prices.json); "
        "ParallelCluster checks it when `up` creates the cluster\n"
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--allowed-ip", "2001:db8::1"), "Error: --allowed-ip: ParallelCluster's AllowedIps takes IPv4 only"),
        (("--allowed-ip", "me"), "Error: --allowed-ip: 'me' is neither an IPv4 CIDR"),
        (("--allowed-ip", "1.2.3.4", "--template", "../x"), "Error: --template: no template '../x'"),
    ],
)
def test_bad_options_are_one_error_line(project, state_dir, args, expected):
    result = run_cli("validate", *args, state=state_dir, cwd=project)
    assert result.returncode == 1 and err(result).startswith(expected) and len(err(result).strip().splitlines()) == 1


def test_a_project_without_the_section_says_where_to_get_one(tmp_path, state_dir):
    (tmp_path / "clustertools.yaml").write_text("name: x\nstorage: {output: s3://b-1}\n")
    result = run_cli("render", "cluster", state=state_dir, cwd=tmp_path)
    assert (
        result.returncode == 1
        and "no parallelcluster: section" in err(result)
        and "cluster-config/examples" in err(result)
    )


@pytest.mark.parametrize("command", [["validate"], ["render"], ["render", "cluster"]])
def test_help_has_examples(state_dir, command):
    result = run_cli(*command, "--help", state=state_dir)
    assert result.returncode == 0 and "Examples:" in out(result)


def test_render_needs_no_pcluster(project):
    # render is pure; only validate pays for ParallelCluster's import (~0.5 s)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cluster_tools", "render", "cluster", "--allowed-ip", "203.0.113.7"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"pcluster", "boto3", "botocore", "paramiko"}
