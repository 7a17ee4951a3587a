"""``clustertools subjects s3://bucket/prefix/``: a subject list from where the data is.

The "directories" right under the prefix (one ListObjectsV2 with a delimiter per 1,000) that are subject IDs
(``sub-01`` in a BIDS dataset, or plain ``NDAR_INV...``), optionally only those matching a shell pattern
(``sub-*``). Other names (``derivatives/``, ``participants.tsv``, a name with a space) are counted, not listed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from cluster_tools.errors import ConfigError
from cluster_tools.model.runs.job_spec import S3Location
from cluster_tools.model.runs.subjects import ID_RE


@dataclass(frozen=True)
class FoundSubjects:
    url: str
    subjects: tuple[str, ...]
    skipped: tuple[str, ...]  # prefixes there that are not subject IDs, or not matching the pattern

    def to_json(self) -> dict[str, object]:
        return {"url": self.url, "subjects": list(self.subjects), "skipped": list(self.skipped)}

    def text(self) -> str:
        """A subjects file: one ID per line, a comment saying where they came from."""
        return f"# {len(self.subjects)} subject(s) under {self.url}\n" + "".join(f"{s}\n" for s in self.subjects)


def subjects_in(client: Any, url: str, pattern: str | None = None) -> FoundSubjects:
    from cluster_tools.transport.s3 import list_common_prefixes

    try:
        where = S3Location.parse(url if url.endswith("/") else url + "/")
    except ValueError as exc:
        raise ConfigError(f"not an S3 location: {url!r} ({exc})", "like s3://my-bucket/bids/") from None
    prefix = f"{where.prefix}/" if where.prefix else ""
    names = [p[len(prefix) :].rstrip("/") for p in list_common_prefixes(client, where.bucket, prefix)]
    wanted = [n for n in names if ID_RE.fullmatch(n) and (pattern is None or fnmatch.fnmatchcase(n, pattern))]
    if not wanted:
        hint = f"no prefix under it matches {pattern!r}" if pattern and names else "it holds no subject prefixes"
        raise ConfigError(
            f"no subjects under s3://{where.bucket}/{prefix}: {hint}",
            "subjects are the 'directories' right under the prefix (s3://bucket/bids/sub-01/...)",
        )
    return FoundSubjects(
        f"s3://{where.bucket}/{prefix}", tuple(sorted(wanted)), tuple(n for n in names if n not in set(wanted))
    )
