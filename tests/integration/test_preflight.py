"""Pre-flight checks against a real AWS endpoint: moto's server on 127.0.0.1, with buckets in two regions,
a VPC with subnets, a key pair and secrets. Each check both ways: passing, and failing with one clear line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from cluster_tools.errors import TransportError
from cluster_tools.model.aws.cluster_checks import ALLOWED_IPS_PLACEHOLDER
from cluster_tools.model.aws.cluster_spec import ClusterSpec
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.aws import preflight as pf
from cluster_tools.services.aws import preflight_resources as pr
from cluster_tools.services.aws.cluster_config import render_project_cluster
from cluster_tools.services.aws.preflight_secrets import check_secret_access, check_secrets
from cluster_tools.services.project.project_init import render_project_file
from tests.moto_aws import moto_server

PLACEHOLDER = ("placeholder", "placeholder")  # moto accepts any key; not secrets


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


def clients_for(endpoint: str, region: str = "us-east-1") -> pf.AwsClients:
    return pf.make_clients(region, endpoint_url=endpoint, static_credentials=PLACEHOLDER)


@pytest.fixture(scope="module")
def world(endpoint):
    """What a study account holds: its buckets (one in another region), a VPC, a key pair and secrets."""
    aws = clients_for(endpoint)
    aws.s3.create_bucket(Bucket="pf-out")
    aws.s3.create_bucket(Bucket="pf-in")
    clients_for(endpoint, "eu-west-1").s3.create_bucket(
        Bucket="pf-in-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    vpc = aws.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    other_vpc = aws.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    elsewhere = aws.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    aws.ec2.create_key_pair(KeyName="pf-key")
    token = aws.secretsmanager.create_secret(Name="nda/token", SecretString='{"token": "x"}')["ARN"]
    aws.secretsmanager.create_secret(Name="hcp/old", SecretString="x")
    aws.secretsmanager.delete_secret(SecretId="hcp/old", RecoveryWindowInDays=7)
    policies = {
        name: aws.iam.create_policy(
            PolicyName=name, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements})
        )["Policy"]["Arn"]
        for name, statements in POLICIES.items()
    }
    return {
        "clients": aws,
        "vpc": vpc,
        "subnets": subnets,
        "elsewhere": elsewhere,
        "token_arn": token,
        "policies": policies,
    }


POLICIES = {
    "read-nda": [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:nda/*",
        }
    ],
    "unrelated": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    "deny-all-secrets": [{"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}],
    "conditional": [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:Get*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "imaging"}},
        }
    ],
}


def spec(world, **changes) -> ClusterSpec:
    fields = {
        "region": "us-east-1",
        "subnet_id": world["subnets"][0],
        "compute_subnet_ids": world["subnets"],
        "key_name": "pf-key",
        "head_node_instance_type": "t3.medium",
        "input_buckets": ["pf-in"],
        "queues": [{"name": "spot", "instance_types": ["c6i.xlarge", "c5.xlarge"]}],
    }
    return ClusterSpec.model_validate({**fields, **changes})


def run(world, cluster: ClusterSpec, **kwargs) -> list[pf.Finding]:
    args = {"output_bucket": "pf-out", "allowed_ips": "203.0.113.7/32", **kwargs}
    return pf.run_preflight(world["clients"], cluster, **args)


def only(findings: list[pf.Finding], check: str) -> list[pf.Finding]:
    return [f for f in findings if f.check == check]


def test_a_good_setup_passes_every_check(world):
    findings = run(
        world,
        spec(world, additional_iam_policies=[world["policies"]["read-nda"]]),
        secret_ids=[world["token_arn"]],
        project_text="name: study\n",
    )
    assert [(f.level, f.check) for f in findings] == [
        ("ok", "credentials"),
        ("ok", "region"),
        ("ok", "buckets"),
        ("ok", "buckets"),
        ("ok", "key-pair"),
        ("ok", "subnets"),
        ("ok", "instance-types"),
        ("ok", "allowed-ips"),
        ("ok", "secrets"),
        ("ok", "secret-access"),
        ("ok", "secret-values"),
    ]
    by_check = {f.check: f.message for f in findings}
    assert by_check["credentials"] == "AWS account 123456789012 as arn:aws:sts::123456789012:user/moto"
    assert [f.message for f in only(findings, "buckets")] == [
        "input bucket pf-in is in us-east-1, like the cluster",
        "output bucket pf-out is in us-east-1, like the cluster",
    ]
    assert by_check["subnets"] == f"{world['subnets'][0]}, {world['subnets'][1]} in {world['vpc']}"
    assert by_check["instance-types"] == "t3.medium, c6i.xlarge, c5.xlarge offered in us-east-1"
    assert by_check["secrets"] == "secret nda/token exists (its value was not read)"


def test_missing_buckets_are_errors(world):
    findings = only(run(world, spec(world, input_buckets=["pf-nope-in"]), output_bucket="pf-nope-out"), "buckets")
    assert [(f.level, f.message) for f in findings] == [
        ("error", "input bucket pf-nope-in does not exist"),
        ("error", "output bucket pf-nope-out does not exist"),
    ]
    assert findings[1].hint == "create it in us-east-1"


def test_a_bucket_in_another_region_costs_money_and_says_so(world):
    findings = only(run(world, spec(world, input_buckets=["pf-in-eu"])), "buckets")
    assert findings[0].level == "warning"
    assert findings[0].message == (
        "input bucket pf-in-eu is in eu-west-1, the cluster in us-east-1: every read "
        "crosses regions, billed per GB and slower"
    )
    assert "eu-west-1" in findings[0].hint and findings[1].level == "ok"
    out = only(run(world, spec(world, input_buckets=[]), output_bucket="pf-in-eu"), "buckets")
    assert [f.level for f in out] == ["warning"] and "every output crosses regions" in out[0].message


def test_the_key_pair(world):
    missing = pr.check_key_pair(world["clients"], "pf-nobody")
    assert missing.level == "error" and missing.message == "key pair pf-nobody does not exist in us-east-1"
    assert "aws ec2 import-key-pair --region us-east-1 --key-name pf-nobody" in missing.hint
    assert pr.check_key_pair(world["clients"], "pf-key").level == "ok"
    unset = only(run(world, spec(world, key_name=None)), "key-pair")[0]
    assert unset.level == "warning" and "nobody will be able to SSH" in unset.message


def test_the_subnets(world):
    ghost = "subnet-0123456789abcdef0"
    missing = only(run(world, spec(world, compute_subnet_ids=[world["subnets"][1], ghost])), "subnets")[0]
    assert (missing.level, missing.message) == ("error", f"no subnet {ghost} in us-east-1")
    split = pr.check_subnets(world["clients"], [world["subnets"][0], world["elsewhere"]])
    assert split.level == "error" and split.message.startswith("the subnets sit in different VPCs (")
    assert pr.check_subnets(world["clients"], world["subnets"][:1]).level == "ok"


def test_instance_types_exist_in_the_region(world, endpoint):
    unknown = only(
        run(world, spec(world, queues=[{"name": "q", "instance_types": ["c6i.xlarge", "c6i.hugemongous"]}])),
        "instance-types",
    )
    assert [(f.level, f.message) for f in unknown] == [("error", "c6i.hugemongous is not an EC2 instance type")]
    # moto serves EC2's real offerings per region: g5 (GPU) is not sold in af-south-1.
    elsewhere = pr.check_instance_types(clients_for(endpoint, "af-south-1"), ["c5.xlarge", "g5.xlarge"])
    assert [(f.level, f.message) for f in elsewhere] == [("error", "g5.xlarge is not offered in af-south-1")]
    assert pr.check_instance_types(clients_for(endpoint, "af-south-1"), ["c5.xlarge"])[0].level == "ok"


def test_the_region_must_be_enabled(endpoint):
    # moto lists ap-east-1 as an opt-in region that is not enabled, as a new account sees it
    disabled = pr.check_region(clients_for(endpoint, "ap-east-1"))
    assert (disabled.level, disabled.message) == ("error", "ap-east-1 is not enabled for your account")
    assert pr.check_region(clients_for(endpoint, "eu-west-1")).level == "ok"


@pytest.mark.parametrize(
    "allowed, open_ok, level, words",
    [
        ("203.0.113.7/32", False, "ok", "from 203.0.113.7/32 only"),
        ("pl-0123456789abcdef0", False, "ok", "pl-0123456789abcdef0"),
        ("0.0.0.0/0", False, "error", "open to the world"),
        ("0.0.0.0/0", True, "warning", "as clustertools.yaml asks"),
        ("10.0.0.0/8", False, "warning", "a very wide range"),
        (ALLOWED_IPS_PLACEHOLDER, False, "error", "your public address was not found"),
    ],
)
def test_allowed_ips(world, allowed, open_ok, level, words):
    finding = only(run(world, spec(world), allowed_ips=allowed, open_ssh_ok=open_ok), "allowed-ips")[0]
    assert finding.level == level and words in finding.message


def test_secrets_exist_without_reading_them(world):
    findings = check_secrets(
        world["clients"],
        [world["token_arn"], "nda/nope", "hcp/old", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"],
    )
    assert [(f.level, f.message) for f in findings] == [
        ("ok", "secret nda/token exists (its value was not read)"),
        ("error", "no secret nda/nope in us-east-1"),
        ("error", "secret hcp/old is scheduled for deletion"),
        (
            "warning",
            "secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf is in eu-west-1, "
            "the cluster in us-east-1: not checked here",
        ),
    ]
    assert "restore-secret --secret-id hcp/old" in findings[2].hint
    assert "never in clustertools.yaml" in findings[1].hint
    # the accounting database's password is a referenced secret too
    db = {
        "uri": "acct.example.com:3306",
        "user_name": "slurm",
        "password_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    }
    assert [f.message for f in only(run(world, spec(world, database=db)), "secrets")] == [
        "no secret arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf in us-east-1"
    ]


def test_the_nodes_must_be_allowed_to_read_an_input_secret(world):
    token, p = world["token_arn"], world["policies"]
    cases = [
        (
            [],
            "error",
            f"the nodes cannot read {token}: they get no policy allowing secretsmanager:GetSecretValue on it",
        ),
        ([p["unrelated"], p["read-nda"]], "ok", f"the nodes may read {token}"),
        ([p["unrelated"]], "error", f"the nodes' policies do not allow secretsmanager:GetSecretValue on {token}"),
        (
            [p["read-nda"], p["deny-all-secrets"]],
            "error",
            f"the nodes' policies do not allow secretsmanager:GetSecretValue on {token} (a Deny matches)",
        ),
        (
            [p["conditional"]],
            "warning",
            f"secretsmanager:GetSecretValue on {token} is allowed under a condition clustertools does not evaluate",
        ),
        (["arn:aws:iam::123456789012:policy/nope"], "error", "no IAM policy arn:aws:iam::123456789012:policy/nope"),
    ]
    for policies, level, message in cases:
        findings = check_secret_access(world["clients"], [token], policies)
        assert (findings[0].level, findings[0].message) == (level, message), policies


def test_the_projects_input_credentials_are_checked_and_never_read(world):
    token = world["token_arn"]
    text = render_project_file("study", "sandbox", "s3://pf-out/study").replace(
        "subnet-0123456789abcdef0", world["subnets"][0]
    )
    text = text.replace(
        "  output: s3://pf-out/study",
        f"  output: s3://pf-out/study\n  input: s3://pf-in/hcp\n  input_credentials: {token}",
    )
    text = text.replace(
        "  template: spot-cpu", f"  template: spot-cpu\n  additional_iam_policies: [{world['policies']['read-nda']}]"
    )
    project = parse_project(text)
    assert project.storage.input_credentials == token
    rendered = render_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert world["policies"]["read-nda"] in rendered.yaml_text and "AdditionalIamPolicies" in rendered.yaml_text
    findings = pf.preflight_project(world["clients"], project, rendered, project_text=text)
    assert [(f.level, f.message) for f in only(findings, "secrets") + only(findings, "secret-access")] == [
        ("ok", "secret nda/token exists (its value was not read)"),
        ("ok", f"the nodes may read {token}"),
    ]
    assert not any('"token": "x"' in str(f) for f in findings)


def test_values_that_look_like_secrets_are_flagged_but_never_echoed():
    key_id, secret = "AKIA" + "ABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    text = (
        f"name: study\njob:\n  command: AWS_ACCESS_KEY_ID={key_id} run.sh\n"
        f"# old: {secret}\nhcp_password: hunter2hunter2\n"
        "password_secret_arn: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf\n"
        "output: s3://bucket/derivatives/freesurfer\nsha: 0123456789abcdef0123456789abcdef01234567\n"
    )
    findings = pf.check_secret_values(text)
    assert [(f.level, f.message) for f in findings] == [
        ("error", "clustertools.yaml:3: looks like an AWS access key id"),
        ("warning", "clustertools.yaml:4: looks like an AWS secret access key"),
        (
            "warning",
            "clustertools.yaml:5: looks like a secret (the key hcp_password names one, and its value is not an ARN)",
        ),
    ]
    assert not any(key_id in str(f) or secret in str(f) or "hunter2" in str(f) for f in findings)
    assert "Secrets Manager" in findings[0].hint


def test_the_init_project_is_clean_of_secrets(tmp_path):
    text = render_project_file("study", "sandbox", "s3://pf-out/study")
    assert [(f.level, f.check) for f in pf.check_secret_values(text)] == [("ok", "secret-values")]


def test_preflight_of_an_init_project(world):
    text = render_project_file("study", "sandbox", "s3://pf-out/study").replace(
        "subnet-0123456789abcdef0", world["subnets"][0]
    )
    project = parse_project(text)
    rendered = render_project_cluster(project, allowed_ip="203.0.113.7/32")
    findings = pf.preflight_project(world["clients"], project, rendered, project_text=text)
    assert [f for f in findings if f.level == "error"] == []
    assert [f.check for f in findings if f.level == "warning"] == ["key-pair"]  # init leaves key_name commented out
    assert only(findings, "secrets")[0].level == "ok"
    no_ip = render_project_cluster(project)  # offline the caller's address is unknown: never 0.0.0.0/0
    assert only(pf.preflight_project(world["clients"], project, no_ip), "allowed-ips")[0].level == "error"


def test_an_unreachable_endpoint_is_one_clear_error(world):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = pf.make_clients("us-east-1", endpoint_url=f"http://127.0.0.1:{port}", static_credentials=PLACEHOLDER)
    findings = run(world | {"clients": dead}, spec(world), project_text="name: study\n")
    errors = [f for f in findings if f.level == "error"]
    assert errors == [
        pf.Finding(
            "error",
            "credentials",
            f"cannot check your AWS identity: cannot reach http://127.0.0.1:{port}",
            "check your network, and the endpoint if you set one",
        )
    ]
    assert [f.check for f in findings] == ["credentials", "allowed-ips", "secret-values"]  # offline checks still ran


def test_no_credentials_and_unknown_profiles(endpoint, monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup on this machine
    finding = pf.check_credentials(pf.make_clients("us-east-1", endpoint_url=endpoint))
    assert finding.level == "error" and finding.message.startswith(
        "cannot check your AWS identity: no usable AWS credentials"
    )
    assert "aws configure" in finding.hint
    with pytest.raises(TransportError) as caught:
        pf.make_clients("us-east-1", profile="nope")
    assert caught.value.one_line().startswith("pre-flight: The config profile (nope) could not be found (hint: ")
    Path(tmp_path / "config").write_text("[profile study]\nregion = eu-west-1\n")
    Path(tmp_path / "credentials").write_text(
        "[study]\naws_access_key_id = placeholder\naws_secret_access_key = placeholder\n"
    )
    assert pf.check_credentials(pf.make_clients("us-east-1", profile="study", endpoint_url=endpoint)).level == "ok"
    assert os.environ.get("AWS_PROFILE") is None
