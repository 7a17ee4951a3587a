"""Amazon ECR image references: which registry and region, and the policy its nodes need to pull.

The node bootstrap and the run wrapper log in with the instance role (`aws ecr get-login-password`); the role
needs ECR's read permissions, which AWS's managed policy AmazonEC2ContainerRegistryReadOnly grants
(ecr:GetAuthorizationToken, BatchGetImage, GetDownloadUrlForLayer...). The host pattern is ECR's private
registry endpoint (docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html), FIPS and China included.
"""

from __future__ import annotations

import re

_ECR_HOST = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?"
)


def ecr_region(image: str | None) -> str | None:
    """The region of ``image``'s ECR registry, or None when it is not in ECR."""
    if not image:
        return None
    ref = image.removeprefix("docker://")
    host = ref.split("/", 1)[0] if "/" in ref else ""
    match = _ECR_HOST.fullmatch(host)
    return match["region"] if match else None


def ecr_read_policy(image: str | None) -> str | None:
    """The managed policy the nodes' role needs to pull ``image`` from ECR (None: not an ECR image)."""
    region = ecr_region(image)
    if region is None:
        return None
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
