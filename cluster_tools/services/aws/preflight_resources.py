"""Pre-flight checks of the AWS resources a cluster needs (for ``preflight.run_preflight``): the region, the
S3 buckets, the EC2 key pair, the subnets and the instance types. Read-only calls only: S3 GetBucketLocation and
HeadBucket, EC2 Describe*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cluster_tools.services.aws.preflight import AwsClients, Finding, aws_failure


def check_region(clients: AwsClients) -> Finding:
    region = clients.region
    try:
        listed = {
            r["RegionName"]: r.get("OptInStatus") for r in clients.ec2.describe_regions(AllRegions=True)["Regions"]
        }
    except Exception as exc:
        return aws_failure("region", f"cannot list the regions from {region}", exc, clients)
    if region not in listed:
        return Finding(
            "error", "region", f"{region} is not an AWS region", "set parallelcluster.region, e.g. us-east-1"
        )
    if listed[region] == "not-opted-in":
        return Finding(
            "error",
            "region",
            f"{region} is not enabled for your account",
            "enable it (AWS console > Account > Regions), or choose another region",
        )
    return Finding("ok", "region", f"{region} is available")


def check_buckets(clients: AwsClients, *, output_bucket: str, input_buckets: Iterable[str]) -> list[Finding]:
    """Each bucket exists and sits in the cluster's region: cross-region reads and writes are billed per GB."""
    roles = {b: "input" for b in input_buckets}
    roles[output_bucket] = "output"  # a bucket used both ways is checked once, as the output
    return [_check_bucket(clients, bucket, role) for bucket, role in roles.items()]


def _check_bucket(clients: AwsClients, bucket: str, role: str) -> Finding:
    from cluster_tools.transport.aws_session import error_code

    region, what = clients.region, f"{role} bucket {bucket}"
    try:
        location = clients.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except Exception as exc:
        code = error_code(exc)
        if code is None:  # AWS did not answer: no credentials, no network
            return aws_failure("buckets", f"cannot check {what}", exc, clients)
        if code == "NoSuchBucket":
            hint = (
                ("create it in " + region)
                if role == "output"
                else "check the bucket name (storage.input, input_buckets)"
            )
            return Finding("error", "buckets", f"{what} does not exist", hint)
        # A third party often denies GetBucketLocation; HEAD still tells the region in a header.
        location = _region_from_head(clients, bucket)
        if location is None:
            return Finding(
                "warning",
                "buckets",
                f"cannot tell where {what} is ({code})",
                "make sure it is in " + region + ": a cross-region read is billed per GB",
            )
    # GetBucketLocation says None for us-east-1 and EU for the oldest eu-west-1 buckets.
    location = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if location == region:
        return Finding("ok", "buckets", f"{what} is in {region}, like the cluster")
    if role == "input":
        return Finding(
            "warning",
            "buckets",
            f"{what} is in {location}, the cluster in {region}: every read crosses regions, billed per GB and slower",
            f"create the cluster in {location} (parallelcluster.region), or copy the inputs to {region}",
        )
    return Finding(
        "warning",
        "buckets",
        f"{what} is in {location}, the cluster in {region}: every output crosses regions, billed per GB",
        f"use an output bucket in {region} (storage.output), or create the cluster in {location}",
    )


def _region_from_head(clients: AwsClients, bucket: str) -> str | None:
    from cluster_tools.transport.aws_session import error_response

    try:
        response = clients.s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        response = error_response(exc)  # a refused HEAD still says the region in a header
        if response is None:
            return None
    return (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("x-amz-bucket-region")


def check_key_pair(clients: AwsClients, key_name: str | None) -> Finding:
    if key_name is None:
        return Finding(
            "warning",
            "key-pair",
            "no key pair: nobody will be able to SSH to the head node",
            "set parallelcluster.key_name to an EC2 key pair of " + clients.region,
        )
    try:
        found = clients.ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_name]}])["KeyPairs"]
    except Exception as exc:
        return aws_failure("key-pair", f"cannot check key pair {key_name}", exc, clients)
    if not found:
        return Finding(
            "error",
            "key-pair",
            f"key pair {key_name} does not exist in {clients.region}",
            f"import your public key: aws ec2 import-key-pair --region {clients.region} "
            f"--key-name {key_name} --public-key-material fileb://~/.ssh/id_ed25519.pub",
        )
    return Finding("ok", "key-pair", f"key pair {key_name} exists")


def check_subnets(clients: AwsClients, subnet_ids: Sequence[str]) -> Finding:
    wanted = list(dict.fromkeys(subnet_ids))
    try:
        found = clients.ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": wanted}])["Subnets"]
    except Exception as exc:
        return aws_failure("subnets", "cannot check the subnets", exc, clients)
    vpcs = {s["SubnetId"]: s.get("VpcId") for s in found}
    missing = [s for s in wanted if s not in vpcs]
    if missing:
        return Finding(
            "error",
            "subnets",
            f"no subnet {', '.join(missing)} in {clients.region}",
            "set parallelcluster.subnet_id (and compute_subnet_ids) to subnets of your VPC there",
        )
    if len(set(vpcs.values())) > 1:
        return Finding(
            "error",
            "subnets",
            f"the subnets sit in different VPCs ({', '.join(sorted(set(vpcs.values())))})",
            "ParallelCluster puts the head node and every queue in one VPC: choose subnets of one",
        )
    return Finding("ok", "subnets", f"{', '.join(wanted)} in {next(iter(vpcs.values()))}")


def check_instance_types(clients: AwsClients, instance_types: Sequence[str]) -> list[Finding]:
    """Each type is offered in the region (EC2's own list, not a copy of ours); a type EC2 does not know at
    all is told apart from one it sells elsewhere."""
    wanted = list(dict.fromkeys(instance_types))
    try:
        offered: set[str] = set()
        pages = clients.ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="region", Filters=[{"Name": "instance-type", "Values": wanted}]
        )
        for page in pages:
            offered.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    except Exception as exc:
        return [aws_failure("instance-types", "cannot list the instance types", exc, clients)]
    findings = [_missing_type(clients, t) for t in wanted if t not in offered]
    if not findings:
        findings.append(Finding("ok", "instance-types", f"{', '.join(wanted)} offered in {clients.region}"))
    return findings


def _missing_type(clients: AwsClients, instance_type: str) -> Finding:
    from cluster_tools.transport.aws_session import error_code

    try:
        clients.ec2.describe_instance_types(InstanceTypes=[instance_type])
    except Exception as exc:  # any other failure: the offering answer is enough to say it cannot be used here
        if error_code(exc) == "InvalidInstanceType":
            return Finding(
                "error",
                "instance-types",
                f"{instance_type} is not an EC2 instance type",
                "check the spelling in parallelcluster.queues (e.g. c6i.xlarge)",
            )
    return Finding(
        "error",
        "instance-types",
        f"{instance_type} is not offered in {clients.region}",
        "choose another type, or another region (aws ec2 describe-instance-type-offerings)",
    )
