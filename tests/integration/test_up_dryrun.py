"""`clustertools up --dry-run` as a user runs it (the CLI in a subprocess) against a real moto server: render,
offline validation, pre-flight and ParallelCluster's own dry run, with nothing faked on our side.

As in test_pcluster_dryrun.py: moto has no official ParallelCluster AMI (one is registered and marked as
owned by "amazon" in moto's in-process backend), and three validators moto cannot serve are suppressed
through CLUSTERTOOLS_TEST_SUPPRESS_VALIDATORS, which only tests set and which `up` honours on dry runs only.
"""

from __future__ import annotations

import os
import shutil

import pytest

from cluster_tools.services.project import render_project_file
from tests.helpers import err, out, run_cli

REGION = "us-east-1"
MOTO_CANNOT_SERVE = "HeadNodeLaunchTemplateValidator,ComputeResourceLaunchTemplateValidator,KeyPairValidator"

pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="ParallelCluster's create (dry run included) needs Node.js: apt-get install nodejs")


@pytest.fixture(scope="module")
def aws():
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.server import ThreadedMotoServer
    from pcluster.utils import get_installed_version

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        # The CLI subprocess inherits these: the endpoint and placeholder credentials (moto accepts any key).
        env.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        env.setenv("AWS_ACCESS_KEY_ID", "placeholder")
        env.setenv("AWS_SECRET_ACCESS_KEY", "placeholder")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        ec2.create_key_pair(KeyName="updry-key")
        image = ec2.register_image(Name=f"aws-parallelcluster-{get_installed_version()}-amzn2023-hvm-x86_64-202501010000",
                                   RootDeviceName="/dev/xvda")["ImageId"]
        ami = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].amis[image]
        ami.owner_alias, ami.architecture = "amazon", "x86_64"  # the only state EC2's API cannot set
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="updry-out")
        yield {"subnet": subnet, "s3": s3}
    server.stop()


def study(tmp_path, aws, name: str, *, bucket: str = "updry-out"):
    text = render_project_file(name, "sandbox", f"s3://{bucket}/{name}")
    text = text.replace("subnet-0123456789abcdef0", aws["subnet"]).replace("# key_name: my-key-pair", "key_name: updry-key")
    project = tmp_path / name
    project.mkdir()
    (project / "clustertools.yaml").write_text(text)
    return project


def up(tmp_path, project, *args):
    return run_cli("up", *args, state=tmp_path / "state", cwd=project, timeout=300,
                   env={"CLUSTERTOOLS_TEST_SUPPRESS_VALIDATORS": MOTO_CANNOT_SERVE})


def test_dry_run_of_the_init_project_passes_and_prints_findings_and_config(aws, tmp_path):
    result = up(tmp_path, study(tmp_path, aws, "drystudy"), "--dry-run", "--allowed-ip", "203.0.113.7/32")
    assert result.returncode == 0, err(result)
    lines = out(result).splitlines()
    checks = [line.split()[1].rstrip(":") for line in lines if line.startswith(("ok ", "warning ", "error "))]
    assert checks[:9] == ["validate", "bootstrap", "credentials", "region", "buckets", "key-pair", "subnets",
                          "instance-types", "allowed-ips"]
    assert "ok      allowed-ips: SSH to the head node from 203.0.113.7/32 only" in lines
    # ParallelCluster's dry run ran: it looked for the bootstrap script `up` would upload (nothing was)
    assert any(line.startswith("warning pcluster:AsyncTimedUrlValidator") for line in lines)
    assert "bootstrap: would upload clustertools/drystudy/bootstrap/README.md" in out(result)
    assert "    AllowedIps: 203.0.113.7/32" in lines  # the rendered config follows the findings
    assert lines[-1] == "ok: dry run of drystudy (us-east-1) passed; nothing was uploaded or created"
    assert aws["s3"].list_objects_v2(Bucket="updry-out").get("KeyCount") == 0
    assert not (tmp_path / "state" / "clusters").exists()


def test_preflight_errors_stop_the_dry_run_with_one_error_line(aws, tmp_path):
    result = up(tmp_path, study(tmp_path, aws, "nobucket", bucket="updry-missing"), "--dry-run",
                "--allowed-ip", "203.0.113.7/32")
    assert result.returncode == 1
    assert "error   buckets: output bucket updry-missing does not exist (hint: create it in us-east-1)" in out(result)
    assert err(result).splitlines() == ["Error: pre-flight: 1 error(s); nothing was uploaded or created (hint: fix "
                                        "each `error` line above, then run `clustertools up` again)"]


def test_without_an_address_up_says_so_and_stops(aws, tmp_path):
    result = up(tmp_path, study(tmp_path, aws, "noaddress"), "--dry-run")
    assert result.returncode == 1 and out(result) == ""
    assert err(result).startswith("Error: your public address cannot be learned here")
    assert "0.0.0.0/0" not in err(result).split("instead")[1]  # named only as what is never done
