"""A real moto server standing in for AWS in tests: the endpoint of every boto3 client (pcluster's too,
which builds its clients from the environment), with a VPC, a subnet, a key pair and an output bucket."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

REGION = "us-east-1"
# ParallelCluster runs Node.js even for a dry-run validation.
needs_node = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="ParallelCluster's create (dry run included) needs Node.js: apt-get install nodejs",
)
# ParallelCluster validators that moto cannot serve (its launch-template and key-pair answers lack fields).
MOTO_CANNOT_SERVE = ("HeadNodeLaunchTemplateValidator", "ComputeResourceLaunchTemplateValidator", "KeyPairValidator")


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port); yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def moto_aws(*, key_name: str, bucket: str, official_ami: bool = False) -> Iterator[dict]:
    """Yields {"endpoint", "subnet", "s3"} while the environment points boto3 at the server."""
    import boto3

    with moto_server() as endpoint, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "placeholder")  # moto accepts any key; not a secret
        env.setenv("AWS_SECRET_ACCESS_KEY", "placeholder")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"][
            "SubnetId"
        ]
        ec2.create_key_pair(KeyName=key_name)
        if official_ami:
            _register_official_ami(ec2)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        yield {"endpoint": endpoint, "subnet": subnet, "s3": s3}


def _register_official_ami(ec2) -> None:
    """pcluster looks for its own AMI, owned by "amazon": register one and set what EC2's API cannot."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from pcluster.utils import get_installed_version

    image = ec2.register_image(
        Name=f"aws-parallelcluster-{get_installed_version()}-amzn2023-hvm-x86_64-202501010000",
        RootDeviceName="/dev/xvda",
    )["ImageId"]
    ami = ec2_backends[DEFAULT_ACCOUNT_ID][REGION].amis[image]
    ami.owner_alias, ami.architecture = "amazon", "x86_64"
