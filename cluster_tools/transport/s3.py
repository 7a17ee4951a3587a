"""S3 through boto3, built from explicit arguments; botocore errors become ours here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cluster_tools.errors import TransportError
from cluster_tools.transport.aws_session import CREDENTIALS_HINT, aws_client, aws_failure_of, aws_session

# The sandbox's S3 endpoint (moto) accepts any key; these are placeholders, not secrets.
SANDBOX_CREDENTIALS = ("sandbox", "sandbox")
PAGE_SIZE = 1000  # S3's maximum keys per ListObjectsV2 page


@dataclass(frozen=True)
class S3Target:
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    sandbox: bool = False


def make_s3_client(target: S3Target, *, max_pool_connections: int = 32, raw_timestamps: bool = False) -> Any:
    """A boto3 S3 client with botocore's standard retry mode (backoff on throttling and 5xx).

    ``raw_timestamps`` keeps timestamps (``LastModified``) as the ISO 8601 strings S3 sends instead of
    parsing each into a datetime: listing thousands of keys is then markedly cheaper (awscli does the same).
    """
    session = aws_session(
        profile=target.profile,
        region=target.region,
        static_credentials=SANDBOX_CREDENTIALS if target.sandbox else None,
        raw_timestamps=raw_timestamps,
    )
    return aws_client(
        session,
        "s3",
        target.region,
        endpoint_url=target.endpoint_url,
        attempts=6,
        max_pool_connections=max_pool_connections,
    )


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


def iter_object_pages(
    client: Any, bucket: str, prefix: str, *, start_after: str | None = None, page_size: int = PAGE_SIZE
) -> Iterator[list[dict]]:
    """Each page (up to ``page_size`` entries) of the objects under ``prefix``, in key order.

    One ListObjectsV2 request per page through boto3's paginator; no per-key requests.
    """
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
    if start_after:
        kwargs["StartAfter"] = start_after
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            yield page.get("Contents", [])
    except (ClientError, BotoCoreError) as exc:
        raise translate_s3_error(exc, f"cannot list s3://{bucket}/{prefix}", bucket=bucket) from None


def list_common_prefixes(client: Any, bucket: str, prefix: str, delimiter: str = "/") -> list[str]:
    """The "directories" right under ``prefix`` (each ending in ``delimiter``), one request per 1000."""
    found: list[str] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter=delimiter, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    except (ClientError, BotoCoreError) as exc:
        raise translate_s3_error(exc, f"cannot list s3://{bucket}/{prefix}", bucket=bucket) from None
    return found


def read_object(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such key."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if _code(exc) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise translate_s3_error(exc, f"cannot read s3://{bucket}/{key}", bucket=bucket) from None
    except BotoCoreError as exc:
        raise translate_s3_error(exc, f"cannot read s3://{bucket}/{key}", bucket=bucket) from None


@dataclass(frozen=True)
class Download:
    key: str
    path: str  # the local file; its directory must exist
    size: int  # from the listing: no HEAD request per key


MULTIPART_THRESHOLD = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


def download_files(
    client: Any,
    bucket: str,
    downloads: Sequence[Download],
    *,
    max_concurrency: int = 32,
    on_bytes: Callable[[int], None] | None = None,
    on_file: Callable[[Download, str | None], None] | None = None,
) -> dict[str, str]:
    """Download concurrently; returns {key: one-line error} for the files that failed.

    Each file is written to a temporary name next to it, then renamed: never a half-written file under
    the real name. Small files take one GET each on a thread pool (cheaper per file than s3transfer's
    machinery); files from MULTIPART_THRESHOLD up go through s3transfer's TransferManager afterwards
    (parallel ranged GETs), told each size so that it sends no HEAD. ``client`` should allow
    ``max_concurrency`` pooled connections. Callbacks run on worker threads.
    """
    small = [d for d in downloads if d.size < MULTIPART_THRESHOLD]
    large = [d for d in downloads if d.size >= MULTIPART_THRESHOLD]
    failed: dict[str, str] = {}

    def one(item: Download) -> None:
        error = _get_to_file(client, bucket, item, on_bytes)
        if error:
            failed[item.key] = error
        if on_file:
            on_file(item, error)

    if small:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max(1, min(max_concurrency, len(small))))
        try:
            for _ in pool.map(one, small):
                pass
        except BaseException:  # Ctrl-C: drop the queued files, let the running ones finish (and clean up)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    if large:
        failed.update(_transfer_large(client, bucket, large, max_concurrency, on_bytes, on_file))
    return failed


_RETRYABLE_READ = (
    "IncompleteReadError",
    "ReadTimeoutError",
    "ResponseStreamingError",
    "ConnectionClosedError",
    "ProtocolError",
    "ConnectionResetError",
)


def _get_to_file(client: Any, bucket: str, item: Download, on_bytes: Callable[[int], None] | None) -> str | None:
    """One GET streamed to ``<dir>/.<name>.<random>.part``, renamed over ``item.path``; None when it worked."""
    import os
    import secrets

    directory, name = os.path.split(item.path)
    short = name.encode()[:80].decode(errors="ignore")  # room for the suffix within NAME_MAX
    for attempt in range(3):
        done = 0
        tmp = None
        try:
            body = client.get_object(Bucket=bucket, Key=item.key)["Body"]
            candidate = os.path.join(directory, f".{short}.{secrets.token_hex(4)}.part")
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
            tmp = candidate
            with os.fdopen(fd, "wb") as handle:
                for chunk in body.iter_chunks(_CHUNK):
                    handle.write(chunk)
                    done += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            os.replace(tmp, item.path)
            return None
        except Exception as exc:  # reported per file; never kills a worker thread
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if on_bytes and done:
                on_bytes(-done)
            if type(exc).__name__ not in _RETRYABLE_READ or attempt == 2:
                return _one_line(exc)
    return None  # unreachable


def _transfer_large(
    client: Any,
    bucket: str,
    items: Sequence[Download],
    max_concurrency: int,
    on_bytes: Callable[[int], None] | None,
    on_file: Callable[[Download, str | None], None] | None,
) -> dict[str, str]:
    from s3transfer.manager import TransferConfig, TransferManager
    from s3transfer.subscribers import BaseSubscriber

    class Subscriber(BaseSubscriber):
        def __init__(self, item: Download) -> None:
            self.item = item

        def on_queued(self, future: Any, **kwargs: Any) -> None:
            future.meta.provide_transfer_size(self.item.size)

        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            if on_bytes:
                on_bytes(bytes_transferred)

        def on_done(self, future: Any, **kwargs: Any) -> None:
            if on_file:
                try:
                    future.result()
                    on_file(self.item, None)
                except Exception as exc:
                    on_file(self.item, _one_line(exc))

    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_THRESHOLD // 2,
        max_request_concurrency=max_concurrency,
    )
    failed: dict[str, str] = {}
    with TransferManager(client, config) as manager:
        futures = [(d, manager.download(bucket, d.key, d.path, subscribers=[Subscriber(d)])) for d in items]
        for item, future in futures:
            try:
                future.result()
            except Exception as exc:
                failed[item.key] = _one_line(exc)
    return failed


def _one_line(exc: Exception) -> str:
    if isinstance(exc, (ClientError, BotoCoreError)):
        return translate_s3_error(exc, "download failed").one_line()
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _code(exc: ClientError) -> str:
    return str(
        exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    )


_ACCESS_CODES = (
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
)


def translate_s3_error(exc: Exception, what: str, *, bucket: str | None = None) -> TransportError:
    """A botocore error as one clear line with a hint: missing bucket, access denied, endpoint unreachable,
    no credentials; anything else with S3's own code and message."""
    failure = aws_failure_of(exc)
    if isinstance(exc, ClientError) and failure is not None:
        code, message = failure.code or "?", failure.message
        if code == "NoSuchBucket":
            name = bucket or exc.response.get("Error", {}).get("BucketName") or "?"
            return TransportError(
                f"{what}: bucket {name} does not exist",
                "check the output location (storage.output); the sandbox's S3 forgets its buckets when it stops",
                stderr=str(exc),
            )
        if code in _ACCESS_CODES:
            return TransportError(
                f"{what}: access denied ({code})",
                "check your AWS credentials (AWS_PROFILE) and the bucket's policy",
                stderr=str(exc),
            )
        return TransportError(f"{what}: {code}: {message}".rstrip(": "), stderr=str(exc))
    if failure is not None and failure.kind == "unreachable":
        return TransportError(
            f"{what}: cannot reach the S3 endpoint ({exc})",
            "check the endpoint and your network; for the sandbox: clustertools sandbox status",
        )
    if failure is not None and failure.kind == "credentials":
        return TransportError(f"{what}: {exc}", CREDENTIALS_HINT)
    return TransportError(f"{what}: {exc}", "check the endpoint and your network")


def _translate(exc: Exception, what: str) -> TransportError:
    return translate_s3_error(exc, what)
