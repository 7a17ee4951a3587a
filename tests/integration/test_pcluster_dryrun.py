"""ParallelCluster's own dry-run validation (pcluster.lib create_cluster dryrun=True) through our
transport, against a real moto server: the config `clustertools init` writes, rendered by us, checked by
ParallelCluster's validators calling EC2 and S3 on 127.0.0.1. Nothing here is faked on our side.

What moto cannot serve, and what the tests do about it (ParallelCluster 3.16.1, moto 5.x):
- HeadNodeLaunchTemplateValidator / ComputeResourceLaunchTemplateValidator: their RunInstances dry run
  fails in moto with "The request must contain the parameter ebs" -> suppressed.
- KeyPairValidator: moto's DescribeKeyPairs answers without KeyType; the validator fails with 'KeyType'
  -> suppressed.
- The official ParallelCluster AMI (name aws-parallelcluster-<version>-amzn2023-hvm-x86_64-*, owner
  "amazon"): moto has none, and an image registered through the API is owned by the account, not by
  "amazon", and has no architecture. The test registers one through EC2's API, then sets those two
  fields in moto's in-process backend: the only state the API cannot set.
"""

from __future__ import annotations

import itertools
import os

import pytest

from cluster_tools.model.project.project_config import parse_project
from cluster_tools.render.pcluster_config import bootstrap_url
from cluster_tools.services.aws.cluster_config import render_project_cluster
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.transport import pcluster as pc
from tests.moto_aws import MOTO_CANNOT_SERVE, REGION, moto_aws, needs_node

_names = itertools.count()

pytestmark = needs_node


@pytest.fixture(scope="module")
def aws():
    with moto_aws(key_name="ct-key", bucket="ct-out", official_ami=True) as stack:
        yield stack


def rendered(subnet: str, *, instance_type: str = "c5.xlarge"):
    """The project `clustertools init` writes, pointed at moto's subnet, with a key pair and a name of its own
    (pcluster caches its S3 checks per URL for a few seconds: one bootstrap URL per test)."""
    name = f"study{next(_names)}"
    text = render_project_file(name, "sandbox", f"s3://ct-out/{name}")
    text = text.replace("subnet-0123456789abcdef0", subnet).replace("# key_name: my-key-pair", "key_name: ct-key")
    text = text.replace("c5.xlarge", instance_type)
    return render_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32")


def test_the_init_project_passes_parallelclusters_dry_run(aws):
    cluster = rendered(aws["subnet"])
    region_before = os.environ.get("AWS_DEFAULT_REGION")
    result = pc.create_cluster(
        cluster.cluster_name, cluster.yaml_text, region=REGION, dry_run=True, suppress_validators=MOTO_CANNOT_SERVE
    )
    assert result.dry_run and result.cluster is None
    assert os.environ.get("AWS_DEFAULT_REGION") == region_before  # pcluster set it; we put it back
    # ParallelCluster looked for the bootstrap script in our bucket: `up` uploads it before create.
    script = bootstrap_url("ct-out", cluster.cluster_name).removeprefix("s3://ct-out/")
    assert [(m.level, m.type) for m in result.validation_messages] == [("WARNING", "AsyncTimedUrlValidator")]
    assert script in result.validation_messages[0].message


def test_with_the_bootstrap_uploaded_the_dry_run_is_clean(aws):
    cluster = rendered(aws["subnet"])
    key = bootstrap_url("ct-out", cluster.cluster_name).removeprefix("s3://ct-out/")
    aws["s3"].put_object(Bucket="ct-out", Key=key, Body=b"#!/bin/sh\nexit 0\n")
    result = pc.create_cluster(
        cluster.cluster_name, cluster.yaml_text, region=REGION, dry_run=True, suppress_validators=MOTO_CANNOT_SERVE
    )
    assert result == pc.CreateResult(name=cluster.cluster_name, dry_run=True, cluster=None, validation_messages=())


def test_a_missing_subnet_is_one_line(aws):
    cluster = rendered("subnet-0123456789abcdef0")
    with pytest.raises(pc.PclusterConfigRejected) as caught:
        pc.create_cluster(
            cluster.cluster_name, cluster.yaml_text, region=REGION, dry_run=True, suppress_validators=MOTO_CANNOT_SERVE
        )
    assert caught.value.one_line() == (
        f"create cluster {cluster.cluster_name}: Invalid cluster configuration: The subnet ID "
        "'subnet-0123456789abcdef0' does not exist (hint: fix the config (clustertools validate), "
        "or see ParallelCluster's validators)"
    )


def test_an_unknown_instance_type_is_one_line(aws):
    cluster = rendered(aws["subnet"], instance_type="c5.ninetyxlarge")
    with pytest.raises(pc.PclusterConfigRejected, match=r"instance types do not exist: \[c5.ninetyxlarge\]") as caught:
        pc.create_cluster(
            cluster.cluster_name, cluster.yaml_text, region=REGION, dry_run=True, suppress_validators=MOTO_CANNOT_SERVE
        )
    assert "\n" not in caught.value.one_line()


def test_a_name_already_taken_is_recognised(aws):
    """A stack of the cluster's name exists (made through moto's CloudFormation): the dry run says so."""
    import boto3

    cluster = rendered(aws["subnet"])
    template = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=cluster.cluster_name, TemplateBody=template
    )
    with pytest.raises(pc.PclusterClusterExists, match="already exists"):
        pc.create_cluster(
            cluster.cluster_name, cluster.yaml_text, region=REGION, dry_run=True, suppress_validators=MOTO_CANNOT_SERVE
        )
