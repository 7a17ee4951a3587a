"""The sandbox's S3 objects outlive a restart of its S3 endpoint.

moto keeps objects in memory only. Its recorder (MOTO_ENABLE_RECORDING) appends every request to a
file; when the endpoint died and `sandbox up` restarts it, the requests that changed something are
sent again, in order, to the new one: the buckets and objects are back as they were. Multipart
uploads get new upload ids from the new endpoint: the old ids in later requests are mapped to them.
`sandbox down` (and a fresh start) forget the recording: a stopped sandbox's S3 starts empty.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

_READS = ("GET", "HEAD", "OPTIONS")
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "expect", "accept-encoding", "connection"}
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")


def recording_env(recording: Path) -> dict[str, str]:
    """What moto's server needs to record every request into ``recording`` (made 0600: it holds object data)."""
    recording.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(recording, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    return {"MOTO_ENABLE_RECORDING": "1", "MOTO_RECORDER_FILEPATH": str(recording)}


def set_aside(recording: Path) -> Path | None:
    """Move the dead endpoint's recording out of the new one's way; None when there is nothing to replay.

    A recording left aside by a restart that failed is kept, and what came after it appended.
    """
    aside = _aside(recording)
    if recording.is_file() and recording.stat().st_size:
        if aside.exists():
            with open(aside, "ab") as target, open(recording, "rb") as source:
                target.write(source.read())
            recording.unlink()
        else:
            recording.replace(aside)
    return aside if aside.exists() else None


def forget(recording: Path) -> None:
    """A fresh start: the S3 endpoint begins empty."""
    recording.unlink(missing_ok=True)
    _aside(recording).unlink(missing_ok=True)


def _aside(recording: Path) -> Path:
    return recording.with_name(recording.name + ".replay")


def replay(url: str, recording: Path) -> tuple[int, int]:
    """Send the recorded requests that changed something to ``url``; returns (sent, failed)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    endpoint = urllib.parse.urlsplit(url)
    new_ids: dict[str, str] = {}  # an upload id of the dead endpoint -> the new endpoint's
    started: dict[str, str] = {}  # path -> the upload id the new endpoint gave its latest initiate
    sent = failed = 0
    with open(recording, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
                method, recorded = entry["method"], urllib.parse.urlsplit(entry["url"])
            except (ValueError, KeyError, TypeError):
                failed += 1
                continue
            if method in _READS:
                continue
            query = _map_upload_id(recorded.path, recorded.query, new_ids, started)
            target = urllib.parse.urlunsplit((endpoint.scheme, endpoint.netloc, recorded.path, query, ""))
            try:
                answer = _send(opener, method, target, entry)
            except (OSError, ValueError):
                failed += 1
                continue
            sent += 1
            initiated = _UPLOAD_ID.search(answer) if method == "POST" and "uploads" in _keys(recorded.query) else None
            if initiated:
                started[recorded.path] = initiated.group(1).decode()
    return sent, failed


def _send(opener: urllib.request.OpenerDirector, method: str, target: str, entry: dict) -> bytes:
    body = entry.get("body") or ""
    data = base64.b64decode(body) if entry.get("body_encoded") else str(body).encode()
    headers = {k: v for k, v in (entry.get("headers") or {}).items() if k.lower() not in _DROPPED_HEADERS}
    if not any(k.lower() == "content-type" for k in headers):  # else urllib sends a form type moto parses
        headers["Content-Type"] = "binary/octet-stream"  # S3's own default
    request = urllib.request.Request(
        target, data=data if method in ("PUT", "POST") else None, method=method, headers=headers
    )
    with opener.open(request, timeout=60) as response:
        return response.read()


def _map_upload_id(path: str, query: str, new_ids: dict[str, str], started: dict[str, str]) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    old = next((value for key, value in pairs if key == "uploadId"), None)
    if old is None:
        return query
    if old not in new_ids and path in started:
        new_ids[old] = started[path]
    new = new_ids.get(old, old)
    return urllib.parse.urlencode(
        [(key, new if key == "uploadId" else value) for key, value in pairs], quote_via=urllib.parse.quote
    )


def _keys(query: str) -> set[str]:
    return {key for key, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
