"""S3 through boto3, built from explicit arguments; botocore errors become ours here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cluster_tools.errors import TransportError

# The sandbox's S3 endpoint (moto) accepts any key; these are placeholders, not secrets.
SANDBOX_CREDENTIALS = ("sandbox", "sandbox")


@dataclass(frozen=True)
class S3Target:
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    sandbox: bool = False


def make_s3_client(target: S3Target, *, max_pool_connections: int = 32) -> Any:
    """A boto3 S3 client with botocore's standard retry mode (backoff on throttling and 5xx)."""
    config = Config(
        region_name=target.region,
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=60,
    )
    if target.sandbox:
        key, secret = SANDBOX_CREDENTIALS
        session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=target.region)
    else:
        session = boto3.session.Session(profile_name=target.profile, region_name=target.region)
    return session.client("s3", endpoint_url=target.endpoint_url, config=config)


def ensure_bucket(client: Any, bucket: str, region: str) -> bool:
    """Create ``bucket`` unless it exists. Returns True when it was created."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise _translate(exc, f"cannot check bucket {bucket}") from None
    except BotoCoreError as exc:
        raise _translate(exc, f"cannot check bucket {bucket}") from None
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise _translate(exc, f"cannot create bucket {bucket}") from None
    return True


def _translate(exc: Exception, what: str) -> TransportError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return TransportError(f"{what}: {err.get('Code')}: {err.get('Message')}", stderr=str(exc))
    return TransportError(f"{what}: {exc}", "check the endpoint and your network")
