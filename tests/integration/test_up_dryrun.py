"""`clustertools up --dry-run` as a user runs it (the CLI in a subprocess) against a real moto server: render,
offline validation, pre-flight and ParallelCluster's own dry run, with nothing faked on our side.

As in test_pcluster_dryrun.py: moto has no official ParallelCluster AMI (one is registered and marked as
owned by "amazon" in moto's in-process backend), and three validators moto cannot serve are suppressed
through CLUSTERTOOLS_TEST_SUPPRESS_VALIDATORS, which only tests set and which `up` honours on dry runs only.
"""

from __future__ import annotations

import pytest

from cluster_tools.services.project.project_init import render_project_file
from tests.helpers import err, out, run_cli
from tests.moto_aws import MOTO_CANNOT_SERVE, moto_aws, needs_node

pytestmark = needs_node


@pytest.fixture(scope="module")
def aws():
    with moto_aws(key_name="updry-key", bucket="updry-out", official_ami=True) as stack:
        yield stack


def study(tmp_path, aws, name: str, *, bucket: str = "updry-out"):
    text = render_project_file(name, "sandbox", f"s3://{bucket}/{name}")
    text = text.replace("subnet-0123456789abcdef0", aws["subnet"]).replace(
        "# key_name: my-key-pair", "key_name: updry-key"
    )
    project = tmp_path / name
    project.mkdir()
    (project / "clustertools.yaml").write_text(text)
    return project


def up(tmp_path, project, *args):
    return run_cli(
        "up",
        *args,
        state=tmp_path / "state",
        cwd=project,
        timeout=300,
        env={"CLUSTERTOOLS_TEST_SUPPRESS_VALIDATORS": ",".join(MOTO_CANNOT_SERVE)},
    )


def test_dry_run_of_the_init_project_passes_and_prints_findings_and_config(aws, tmp_path):
    result = up(tmp_path, study(tmp_path, aws, "drystudy"), "--dry-run", "--allowed-ip", "203.0.113.7/32")
    assert result.returncode == 0, err(result)
    lines = out(result).splitlines()
    checks = [line.split()[1].rstrip(":") for line in lines if line.startswith(("ok ", "warning ", "error "))]
    assert checks[:8] == [
        "validate",
        "credentials",
        "region",
        "buckets",
        "key-pair",
        "subnets",
        "instance-types",
        "allowed-ips",
    ]
    assert "ok      allowed-ips: SSH to the head node from 203.0.113.7/32 only" in lines
    # ParallelCluster's dry run ran: it looked for the bootstrap script `up` would upload (nothing was)
    assert any(line.startswith("warning pcluster:AsyncTimedUrlValidator") for line in lines)
    assert "bootstrap: would upload clustertools/drystudy/bootstrap/on-node-configured.sh" in out(result)
    assert "    AllowedIps: 203.0.113.7/32" in lines  # the rendered config follows the findings
    assert lines[-1] == "ok: dry run of drystudy (us-east-1) passed; nothing was uploaded or created"
    assert aws["s3"].list_objects_v2(Bucket="updry-out").get("KeyCount") == 0
    assert not (tmp_path / "state" / "clusters").exists()


def test_preflight_errors_stop_the_dry_run_with_one_error_line(aws, tmp_path):
    result = up(
        tmp_path,
        study(tmp_path, aws, "nobucket", bucket="updry-missing"),
        "--dry-run",
        "--allowed-ip",
        "203.0.113.7/32",
    )
    assert result.returncode == 1
    assert "error   buckets: output bucket updry-missing does not exist (hint: create it in us-east-1)" in out(result)
    assert err(result).splitlines() == [
        "Error: pre-flight: 1 error(s); nothing was uploaded or created (hint: fix "
        "each `error` line above, then run `clustertools up` again)"
    ]


def test_without_an_address_up_says_so_and_stops(aws, tmp_path):
    result = up(tmp_path, study(tmp_path, aws, "noaddress"), "--dry-run")
    assert result.returncode == 1 and out(result) == ""
    assert err(result).startswith("Error: your public address cannot be learned here")
    assert "0.0.0.0/0" not in err(result).split("instead")[1]  # named only as what is never done
