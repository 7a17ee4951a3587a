"""The one way clustertools builds boto3 clients, and the one reading of botocore's failures.

Sessions and clients are made from explicit arguments (profile, region, endpoint, timeouts), never from a
module-level client; botocore's standard retry mode everywhere. boto3 is imported inside the functions so that
importing this module stays cheap (the CLI's ``--help`` imports no heavy library). Services never import
boto3 or botocore: they call ``aws_session``/``aws_client`` and read a failure with ``aws_failure_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cluster_tools.errors import ConfigError

PROFILE_HINT = "name a profile of ~/.aws/config (aws configure list-profiles)"
CREDENTIALS_HINT = "configure AWS credentials: `aws configure`, or set AWS_PROFILE"
NETWORK_HINT = "check your network (and AWS_ENDPOINT_URL if set)"

# The codes with which AWS refuses the credentials themselves (not a missing permission).
REFUSED_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
    }
)


def aws_session(
    *,
    profile: str | None = None,
    region: str | None = None,
    static_credentials: tuple[str, str] | None = None,
    raw_timestamps: bool = False,
) -> Any:
    """A ``boto3.session.Session`` from the standard chain (``profile`` like awscli's --profile, else AWS_PROFILE),
    or from ``static_credentials`` (key id, secret: a test endpoint only). A profile that does not exist is a
    ConfigError. ``raw_timestamps``: timestamps stay the ISO 8601 strings AWS sends (listing thousands of keys is
    markedly cheaper; awscli does the same), on a botocore session of its own so no other client is affected."""
    import boto3
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    core = None
    if raw_timestamps:
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_identity)
    key, secret = static_credentials or (None, None)
    try:
        return boto3.session.Session(
            profile_name=None if static_credentials else profile,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            botocore_session=core,
        )
    except ProfileNotFound as exc:
        raise ConfigError(str(exc), PROFILE_HINT) from None


def aws_client(
    session: Any,
    service: str,
    region: str | None,
    *,
    endpoint_url: str | None = None,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    attempts: int = 3,
    max_pool_connections: int | None = None,
) -> Any:
    """A client of ``service`` in ``region`` from ``session``: botocore's standard retry mode (backoff on
    throttling and 5xx), ``attempts`` in all (the first included)."""
    from botocore.config import Config

    options: dict[str, Any] = {"max_pool_connections": max_pool_connections} if max_pool_connections else {}
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        **options,
    )
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


FailureKind = Literal["credentials", "unreachable", "answered", "other"]


@dataclass(frozen=True)
class AwsFailure:
    """What a botocore exception means: no usable credentials, AWS not reached, or an answer with a code."""

    kind: FailureKind
    code: str | None  # the service's error code (or HTTP status) when AWS answered
    message: str  # one line: AWS's message when it answered, else the exception's text

    @property
    def refused_credentials(self) -> bool:
        return self.kind == "credentials" or self.code in REFUSED_CREDENTIAL_CODES


def aws_failure_of(exc: BaseException) -> AwsFailure | None:
    """How to read ``exc`` when it came from boto3; None when it is no botocore error at all."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return AwsFailure("answered", str(code) if code else None, _one_line(str(error.get("Message") or "")))
    credentials = (
        bx.NoCredentialsError,
        bx.PartialCredentialsError,
        bx.CredentialRetrievalError,
        bx.TokenRetrievalError,
        bx.ProfileNotFound,
    )
    if isinstance(exc, credentials):
        return AwsFailure("credentials", None, _one_line(str(exc)))
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):  # endpoint, timeouts, closed connections
        return AwsFailure("unreachable", None, _one_line(str(exc)))
    if isinstance(exc, bx.BotoCoreError):
        return AwsFailure("other", None, _one_line(str(exc)))
    return None


def error_code(exc: BaseException) -> str | None:
    """The code AWS answered ``exc`` with (``NoSuchBucket``, ``InvalidInstanceType``...); None otherwise."""
    failure = aws_failure_of(exc)
    return failure.code if failure is not None else None


def error_response(exc: BaseException) -> dict[str, Any] | None:
    """The whole answer of a failed call (headers included), when AWS answered."""
    from botocore.exceptions import ClientError

    return exc.response if isinstance(exc, ClientError) else None


def _identity(value: str) -> str:
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())
