"""Subject lists for array runs: one ID per line, or a CSV whose extra columns become env vars.

Parsing is pure (the caller passes text; ``read_subject_file`` is the one thin reader). Every problem
in a list is collected and reported in ONE ``ConfigError`` naming the lines, so a 10,000-line list is
fixed in one pass, and nothing is submitted until the whole list is valid.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cluster_tools.errors import ConfigError
from cluster_tools.model.names import SUBJECT_ID

# Starts with a letter or digit: never '.', '..', a hidden name, or something that looks like an option.
# Always used with fullmatch: '$' would let a trailing newline through.
ID_RE = SUBJECT_ID.pattern
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An env value cannot hold NUL; newlines/CR would break line-based records; the manifest splits on \x1f.
_BAD_VALUE_RE = re.compile(r"[\x00\n\r\x1f]")
ID_COLUMNS = ("subject", "subject_id", "participant_id", "id")
# Columns reach only the user's command (the wrapper runs its own steps in a clean environment), so this
# deny-list is defence in depth and a clear early error, not the protection. Compared case-insensitively:
# a `path` column next to PATH only confuses, and some programs read either case (http_proxy).
RESERVED_NAMES = frozenset(
    {
        "SUBJECT",
        "RUN_ID",
        "INPUT_DIR",
        "OUTPUT_DIR",
        "ATTEMPT",
        "SHARED_DIR",
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "IFS",
        "PWD",
        "TMPDIR",
        "BASH_ENV",
        "ENV",
        # bash runs or obeys these in any child shell (PS4 is expanded under xtrace, SHELLOPTS sets it).
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "CDPATH",
        "GLOBIGNORE",
        # where programs send traffic or whom they trust
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "CONDA_PREFIX",
    }
)
# PYTHON*: PYTHONPATH/PYTHONSTARTUP/PYTHONHOME make any Python (the aws CLI is one) run other code.
RESERVED_PREFIXES = (
    "SLURM_",
    "CT_",
    "LD_",
    "BASH_FUNC",
    "AWS_",
    "PYTHON",
    "DOCKER_",
    "APPTAINER",
    "SINGULARITY",
    "CONTAINERS_",
    "ENROOT_",
)
# What every task's command (and job.container_args, as ${NAME}) sees besides the columns.
TASK_VARIABLES = ("SUBJECT", "RUN_ID", "ATTEMPT", "INPUT_DIR", "OUTPUT_DIR", "SHARED_DIR")
_ARG_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def unknown_variables(args: list[str], columns: list[str] | tuple[str, ...]) -> list[str]:
    """The ${NAME}s in ``args`` that are neither a task variable nor a column, in order, once each."""
    known = {*TASK_VARIABLES, *columns}
    return list(dict.fromkeys(name for arg in args for name in _ARG_VARIABLE.findall(arg) if name not in known))


_BLANK = " \t\r\f\v"  # ASCII only: str.strip() would also eat \x1f, NBSP etc., which we'd rather show
_MAX_EXAMPLES = 10
_ID_RULE = "only letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"
_HINT = "fix or remove those lines; nothing was submitted"


@dataclass(frozen=True)
class SubjectList:
    """The subjects of a run, one per array task, with per-subject env values for CSV lists."""

    ids: tuple[str, ...]
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class _Kind:
    count: int = 0
    examples: list[str] = field(default_factory=list)


class _Problems:
    """Problems by kind: a count and the first few examples, so a huge bad file stays cheap."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str], _Kind] = {}

    def add(self, one: str, many: str, example: str | None = None, *, line: int = 0, value: str = "") -> None:
        entry = self._kinds.setdefault((one, many), _Kind())
        entry.count += 1
        if len(entry.examples) < _MAX_EXAMPLES:
            entry.examples.append(example if example is not None else f"line {line} {_show(value)}")

    def raise_if_any(self, source: str) -> None:
        if not self._kinds:
            return
        parts = []
        for (one, many), kind in self._kinds.items():
            count, examples = kind.count, kind.examples
            more = f" and {count - len(examples)} more" if count > len(examples) else ""
            parts.append(f"{count} {one if count == 1 else many}: {', '.join(examples)}{more}")
        raise ConfigError(f"{source}: " + "; ".join(parts), _HINT)


def _show(value: str) -> str:
    """repr() escapes newlines and control chars, so the message stays one visible line."""
    if len(value) > 60:
        return f"{value[:50]!r}... ({len(value)} chars)"
    return repr(value)


def _check_id(sid: str, line: int, seen: dict[str, tuple[int, str]], problems: _Problems) -> None:
    """``seen``: casefolded ID -> (line, ID as written). `Sub-1` and `sub-1` are one directory on a
    case-insensitive filesystem (macOS, Windows) and collide in S3 sync tools: refused like duplicates."""
    if not ID_RE.fullmatch(sid):
        problems.add(f"invalid subject ID ({_ID_RULE})", f"invalid subject IDs ({_ID_RULE})", line=line, value=sid)
    elif (first := seen.get(sid.lower())) is None:
        seen[sid.lower()] = (line, sid)
    elif first[1] == sid:
        problems.add("duplicate", "duplicates", f"line {line} {_show(sid)} (first on line {first[0]})")
    else:
        problems.add(
            "ID that differs from another only in case",
            "IDs that differ from others only in case",
            f"line {line} {_show(sid)} (line {first[0]} has {_show(first[1])})",
        )


def _is_skipped(line: str) -> bool:
    """Blank, or a comment: its first non-blank character is '#'."""
    stripped = line.lstrip(_BLANK)
    return not stripped or stripped[0] in "#\n"


def parse_subject_list(text: str, source: str = "subjects.txt", *, as_csv: bool | None = None) -> SubjectList:
    """Parse a plain list or CSV (``as_csv=None``: CSV if the first content line has a comma)."""
    text = text.removeprefix("\ufeff")
    if as_csv is None:
        as_csv = _looks_like_csv(text)
    result = _parse_csv(text, source) if as_csv else _parse_plain(text, source)
    if not result.ids:
        raise ConfigError(
            f"{source} has no subjects", "put one subject ID per line; lines starting with # are comments"
        )
    return result


# Far above any real study (ABCD has ~12,000 subjects), far below what would exhaust memory.
MAX_SUBJECT_FILE_BYTES = 64 << 20
MAX_SUBJECT_LINES = 1_000_000


def read_subject_file(path: Path) -> SubjectList:
    """Read and parse ``path``; a ``.csv`` suffix means CSV, otherwise the content decides."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SUBJECT_FILE_BYTES + 1)  # never more: /dev/zero has no end
    except OSError as exc:
        raise ConfigError(f"cannot read subject list {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SUBJECT_FILE_BYTES or data.count(b"\n") > MAX_SUBJECT_LINES:
        raise ConfigError(
            f"{path} is larger than a subject list may be ({MAX_SUBJECT_FILE_BYTES >> 20} MiB, "
            f"{MAX_SUBJECT_LINES:,} lines)",
            "split it into several runs, or check that it is the right file",
        )
    try:
        text = data.decode("utf-8-sig")  # tolerate a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte {data[exc.start]:#04x})", "save the subject list as UTF-8"
        ) from None
    as_csv = True if Path(path).suffix.lower() == ".csv" else None
    return parse_subject_list(text, str(path), as_csv=as_csv)


def _looks_like_csv(text: str) -> bool:
    for raw in io.StringIO(text, newline="\n"):  # lazily: stops at the first content line
        if not _is_skipped(raw):
            return "," in raw
    return False


def _parse_plain(text: str, source: str) -> SubjectList:
    problems = _Problems()
    seen: dict[str, tuple[int, str]] = {}
    # Split on \n only: a lone \r inside a line stays in it and is refused, never silently a new line.
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_BLANK)
        if line and not line.startswith("#"):
            _check_id(line, number, seen, problems)
    problems.raise_if_any(source)
    return SubjectList(ids=tuple(sid for _, sid in seen.values()))  # dicts keep insertion order: file order


def _parse_csv(text: str, source: str) -> SubjectList:
    read = _csv_records(text, source)
    if read is None:
        return SubjectList(ids=())
    header, header_line, records = read
    problems = _Problems()
    names = [name.strip(_BLANK) for name in header]
    id_col = next((i for i, name in enumerate(names) if name.lower() in ID_COLUMNS), None)
    extra = [i for i in range(len(names)) if i != id_col]
    _check_header(names, extra, header_line, problems)

    width = len(header)
    id_width = max(5, len(str(len(records))))
    seen: dict[str, tuple[int, str]] = {}
    ids: list[str] = []
    rows: list[tuple[str, ...]] = []
    for number, (line, row) in enumerate(records, 1):
        if len(row) != width:
            problems.add(
                f"row with the wrong number of fields (the header has {width})",
                f"rows with the wrong number of fields (the header has {width})",
                f"line {line} ({len(row)} fields)",
            )
            continue
        if id_col is None:
            sid = f"task-{number:0{id_width}d}"
        else:
            sid = row[id_col].strip(_BLANK)
            _check_id(sid, line, seen, problems)
        # Exactly as written: values only ever become env values, never shell text.
        values = tuple(row) if id_col is None else tuple(row[:id_col] + row[id_col + 1 :])
        if _BAD_VALUE_RE.search(",".join(values)):  # one search per row; the slow path only when bad
            _bad_values(values, [names[i] for i in extra], line, problems)
        ids.append(sid)
        rows.append(values)
    problems.raise_if_any(source)
    return SubjectList(ids=tuple(ids), columns=tuple(names[i] for i in extra), rows=tuple(rows))


def _csv_records(text: str, source: str) -> tuple[list[str], int, list[tuple[int, list[str]]]] | None:
    """The header, its line and each record with the line it starts on (blank lines and comments skipped);
    None for a file of no record at all. ConfigError names the line that is not valid CSV."""
    header: list[str] | None = None
    header_line = 0
    records: list[tuple[int, list[str]]] = []
    fresh = True  # the next line starts a record (it is not inside a quoted field)

    def lines() -> Iterator[str]:
        nonlocal fresh
        for raw in io.StringIO(text, newline="\n"):  # \n only, as for plain lists
            if fresh and _is_skipped(raw):
                yield "\n"  # a comment's quotes must not open a field; "\n" keeps the line count
            else:
                fresh = False
                yield raw

    reader = csv.reader(lines())
    start = 1  # the line a record starts on (a quoted field may span lines)
    try:
        for row in reader:
            line, start, fresh = start, reader.line_num + 1, True
            if not "".join(row).strip(_BLANK):
                continue
            if header is None:
                header, header_line = row, line
            else:
                records.append((line, row))
    except csv.Error as exc:
        reason = str(exc)
        if "new-line character" in reason:  # csv's own text blames the caller's open() mode
            reason = "a carriage return (\\r) inside an unquoted field"
        raise ConfigError(f"{source}: line {start}: not valid CSV: {reason}", _HINT) from None
    return None if header is None else (header, header_line, records)


def _bad_values(values: tuple[str, ...], columns: list[str], line: int, problems: _Problems) -> None:
    for column, value in zip(columns, values, strict=True):
        if _BAD_VALUE_RE.search(value):
            problems.add(
                "value with NUL, newline, CR or \\x1f",
                "values with NUL, newline, CR or \\x1f",
                f"line {line} column {column!r} {_show(value)}",
            )


def _check_header(names: list[str], extra: list[int], line: int, problems: _Problems) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            problems.add("duplicate column name", "duplicate column names", line=line, value=name)
        seen.add(name)
        if i not in extra:
            continue
        if not ENV_NAME_RE.fullmatch(name):
            problems.add(
                "bad column name (letters, digits and '_', not starting with a digit, e.g. AGE)",
                "bad column names (letters, digits and '_', not starting with a digit, e.g. AGE)",
                line=line,
                value=name,
            )
        elif name.upper() in RESERVED_NAMES or name.upper().startswith(RESERVED_PREFIXES):
            problems.add(
                "reserved column name (compared case-insensitively)",
                "reserved column names (compared case-insensitively)",
                line=line,
                value=name,
            )
