"""Pure: reading what the head node sends back for ``status``: status.sh's reply split into squeue's lines and
the records file's bytes (``split_status_reply``), and the wrapper's task records parsed (``parse_records``).
Merging them into a run's status is run_status.py.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import orjson

from cluster_tools.model.runs.run_status import TaskRecord

SQUEUE_EXIT_MARK = "@@clustertools-squeue-exit"
RECORDS_FROM_MARK = b"@@clustertools-records-from "
QUEUE_MARK = b"\n@@clustertools-queue "


def parse_records(text: str | bytes) -> list[TaskRecord]:
    """JSON lines written by the wrapper; a damaged line (a crash mid-write) or one of the wrong shape is skipped.
    A first read of a 10,000-task run parses thousands of them (issue 16): msgspec decodes and type-checks them all in
    one call; only when some line fails that are the lines taken one by one, and a failing one field by field."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    try:
        return _RECORD.decode_lines(data)
    except msgspec.DecodeError:
        pass
    records = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            records.append(_RECORD.decode(line))
        except msgspec.DecodeError:
            record = _checked_record(_loaded(line))
            if record is not None:
                records.append(record)
    return records


_RECORD = msgspec.json.Decoder(TaskRecord)


def _loaded(line: bytes) -> object:
    """A line msgspec refused, as orjson reads it; bytes that are not UTF-8 (in an error message) are replaced, as a
    reader of the file would see them; a line still not JSON (torn by a crash mid-write) is None, skipped."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return orjson.loads(line.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return None


def _checked_record(data: object) -> TaskRecord | None:
    """A record of an unusual shape, field by field: a record is a file anyone on the cluster could touch, and a wrong
    type would break the merge (an unhashable subject), so such a record is skipped like a torn one."""
    if type(data) is not dict:
        return None
    subject, attempt, state = data.get("subject"), data.get("attempt"), data.get("state")
    if not (isinstance(subject, str) and type(attempt) is int and isinstance(state, str)):
        return None
    exit_code, restarts = data.get("exit_code"), data.get("restarts")
    return TaskRecord(
        subject,
        attempt,
        state,
        exit_code if type(exit_code) is int else None,
        str(data.get("error") or ""),
        str(data.get("start") or ""),
        str(data.get("end") or ""),
        str(data.get("node") or ""),
        str(data.get("job_id") or ""),
        str(data.get("kept") or ""),
        restarts if type(restarts) is int and restarts > 0 else 0,
        str(data.get("image") or ""),
        _number(data.get("peak_mem_mb")),
        _number(data.get("cpu_s")),
        str(data.get("env") or ""),
    )


def _number(value: object) -> float | None:
    """A measured figure of a record: a non-negative number (as written: MB are whole), else None."""
    if (type(value) is int or type(value) is float) and value >= 0:
        return value
    return None


class StatusReply(NamedTuple):
    queue: str  # squeue's lines
    queue_ok: bool  # whether squeue answered
    start: int  # the records file's byte ``records`` begins at
    records: bytes
    first: bytes = b""  # with start > 0: the file's first bytes (up to 4 KiB), to check it still begins the same


class RecordsPart(NamedTuple):
    """The records status.sh sent before the queue: the file from byte ``start`` as it was then."""

    start: int
    first: bytes  # with start > 0: the file's first bytes (up to 4 KiB)
    records: bytes
    queue_at: int  # where the queue's lines begin in the reply


def queue_separator(mark: str) -> bytes:
    """What status.sh prints between the first part of the records and the queue: the line it begins (the file's
    bytes may end mid-line) and the client's one-time ``mark``, which no record can know in advance."""
    return QUEUE_MARK + mark.encode() + b"\n"


def records_header(prefix: bytes) -> tuple[int, bytes, int] | None:
    """From the first bytes of a reply of this version's status.sh, once they hold the header and the H bytes after
    it: N, those bytes, and where the records begin. None before, and for a reply of another shape."""
    if b"\n" not in prefix[:80]:
        return None
    head = _records_header(prefix, 0)
    return head if head is not None and head[2] <= len(prefix) else None


def first_records_part(reply: bytes, mark: str) -> RecordsPart | None:
    """The records of a status.sh of this version that come before the queue, once ``reply`` holds them whole;
    None before (or for a reply of another shape)."""
    head = _records_header(reply, 0)
    if head is None:
        return None
    start, first, body = head
    separator = queue_separator(mark)
    at = reply.find(separator, body)
    return None if at < 0 else RecordsPart(start, first, reply[body:at], at + len(separator))


def reply_after_records_part(part: RecordsPart, rest: bytes) -> StatusReply:
    """The reply of a status.sh of this version, from its records part and what came after it (``rest``: squeue's
    lines and exit, then the records folded while squeue answered)."""
    queue, queue_ok, more_at = _queue_lines(rest, 0)
    more = rest[more_at:]
    return StatusReply(queue, queue_ok, part.start, part.records + more if more else part.records, part.first)


def split_status_reply(reply: bytes, mark: str = "") -> StatusReply:
    """status.sh's output, split. This version's prints where its records begin (``@@clustertools-records-from N H``,
    then H bytes of the file's beginning), the records there were, ``mark``, squeue's lines and exit, then the
    records folded meanwhile. An older run's prints squeue's first, then the records (with that header, or the
    whole file from byte 0 before it). The records (megabytes at a first read) are copied once: each copy of that
    size costs a millisecond of fresh pages."""
    if reply.startswith(RECORDS_FROM_MARK):
        part = first_records_part(reply, mark)
        if part is None:  # cut short, or not status.sh's: nothing to believe
            return StatusReply("", False, -1, b"")
        return reply_after_records_part(part, reply[part.queue_at :])
    if reply.find(SQUEUE_EXIT_MARK.encode()) < 0:
        return StatusReply("", False, 0, reply)
    queue, queue_ok, begin = _queue_lines(reply, 0)
    if not reply.startswith(RECORDS_FROM_MARK, begin):
        return StatusReply(queue, queue_ok, 0, reply[begin:])
    head = _records_header(reply, begin)
    if head is None:
        return StatusReply(queue, queue_ok, -1, b"")
    start, first, body = head
    return StatusReply(queue, queue_ok, start, reply[body:], first)


def _queue_lines(reply: bytes, begin: int) -> tuple[str, bool, int]:
    """squeue's lines from ``begin`` to its exit line: their text, whether squeue answered, and where what follows
    begins (the reply's end when there is no exit line)."""
    mark = reply.find(SQUEUE_EXIT_MARK.encode(), begin)
    if mark < 0:
        return reply[begin:].decode("utf-8", "replace"), False, len(reply)
    queue = reply[begin:mark].decode("utf-8", "replace")
    code_at = mark + len(SQUEUE_EXIT_MARK)
    line_end = reply.find(b"\n", code_at)
    code, rest = (reply[code_at:], len(reply)) if line_end < 0 else (reply[code_at:line_end], line_end + 1)
    return queue, code.strip() == b"0", rest


def _records_header(reply: bytes, begin: int) -> tuple[int, bytes, int] | None:
    """``@@clustertools-records-from N H`` at ``begin``, and the H bytes after it: N, those bytes, and where the
    records begin. None when it is not that header."""
    if not reply.startswith(RECORDS_FROM_MARK, begin):
        return None
    header_end = reply.find(b"\n", begin)
    header = reply[begin + len(RECORDS_FROM_MARK) : len(reply) if header_end < 0 else header_end]
    numbers = header.split()
    if len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        return None
    start, length = int(numbers[0]), int(numbers[1])
    body = len(reply) if header_end < 0 else header_end + 1
    return start, reply[body : body + length], body + length
