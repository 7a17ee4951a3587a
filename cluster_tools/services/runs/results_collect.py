"""`results collect`: one file of every subject (JSON, JSON lines, CSV, TSV; or every file matching a
pattern) as one table, and that table as CSV a spreadsheet cannot be tricked by. Over explicit arguments (an
S3 client, the bucket, the run's key prefix, the subjects), as the rest of services/runs/results.py."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from cluster_tools.errors import ConfigError
from cluster_tools.services.runs.results import list_results


@dataclass
class Table:
    columns: list[str]  # "subject" first, then the files' columns in first-seen order
    rows: list[dict[str, Any]]
    read: int = 0  # subjects whose file was read
    missing: list[str] = field(default_factory=list)  # subjects without the file
    unreadable: dict[str, str] = field(default_factory=dict)  # subject -> why


def check_file_name(name: str) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or name.endswith("/") or ".." in parts or "" in parts:
        raise ConfigError(f"{name!r} is not a file name under a subject's output", "e.g. --file metrics.json")
    return name


def parse_rows(name: str, data: bytes) -> list[dict[str, Any]]:
    """A JSON object, a JSON list of objects, JSON lines, or a CSV/TSV with a header -> rows; a JSON scalar or a
    list of values is one row whose ``value`` it is (a line of JSON lines, one row each). Pure."""
    text = data.decode("utf-8-sig")
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif lower.endswith(".json") or (not lower.endswith((".csv", ".tsv")) and text.lstrip()[:1] in ("{", "[")):
        loaded = json.loads(text)
        items = loaded if isinstance(loaded, list) else [loaded]
    else:
        reader = csv.DictReader(
            io.StringIO(text, newline=""), delimiter="\t" if lower.endswith(".tsv") else ",", restkey="_extra"
        )
        return [dict(row) for row in reader]
    if not all(isinstance(item, dict) for item in items):  # values, not objects: each a row's "value"
        return [{"value": item} for item in items] if lower.endswith((".jsonl", ".ndjson")) else [{"value": loaded}]
    return items


def collect_table(
    client: Any, bucket: str, run_prefix: str, subjects: Sequence[str], name: str, *, jobs: int = 32
) -> Table:
    """Read ``<run prefix>/<subject>/<name>`` of each subject (concurrently) into one table. A ``name`` with
    ``*``, ``?`` or ``[`` is a pattern (``anat/sub-*_desc-summary.json``): every file of a subject matching it
    is read, and each row says which (column ``file``)."""
    from cluster_tools.transport.s3 import read_object

    check_file_name(name)
    subjects = list(dict.fromkeys(subjects))
    files = (
        _matching_files(client, bucket, run_prefix, subjects, name)
        if any(c in name for c in "*?[")
        else [(s, name) for s in subjects]
    )
    with ThreadPoolExecutor(max(1, min(jobs, len(files) or 1))) as pool:
        contents = list(pool.map(lambda f: read_object(client, bucket, f"{run_prefix}/{f[0]}/{f[1]}"), files))
    table = Table(columns=["subject"], rows=[])
    seen = {"subject"}
    table.missing.extend(s for s in subjects if s not in {subject for subject, _ in files})
    for (subject, path), data in zip(files, contents, strict=True):
        if data is None:
            table.missing.append(subject)
            continue
        try:
            rows = [{"file": path, **row} for row in parse_rows(path, data)] if path != name else parse_rows(name, data)
        except (ValueError, UnicodeDecodeError, csv.Error) as exc:
            table.unreadable[subject] = " ".join(str(exc).split())[:200]
            continue
        table.read += 1
        for row in rows:
            if "subject" in row and row["subject"] != subject:
                row["subject_in_file"] = row.pop("subject")
            row.pop("subject", None)
            for column in row:
                if column not in seen:
                    seen.add(column)
                    table.columns.append(column)
            table.rows.append({"subject": subject, **row})
    return table


def _matching_files(
    client: Any, bucket: str, run_prefix: str, subjects: list[str], pattern: str
) -> list[tuple[str, str]]:
    """(subject, path within its outputs) of every output matching ``pattern``, from one listing of the run."""
    import fnmatch

    listing = list_results(client, bucket, run_prefix, subjects)
    return [
        (o.subject, o.key.split("/", 1)[1])
        for o in listing.objects
        if fnmatch.fnmatchcase(o.key.split("/", 1)[1], pattern)
    ]


def write_csv(table: Table, handle: TextIO) -> None:
    """The table as CSV; a cell (or column name) a spreadsheet would run as a formula is escaped."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([spreadsheet_safe(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([spreadsheet_safe(_cell(row.get(c, ""))) for c in table.columns])


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: Any) -> Any:
    """OWASP's CSV-injection rule: text starting with = + - @ tab or CR gets a leading ' so a spreadsheet
    shows it instead of running it (``=HYPERLINK(...)`` in a subject's output). Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value
