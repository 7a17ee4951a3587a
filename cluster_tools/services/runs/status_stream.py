"""status.sh's reply as it comes (issue 16): the records it sends before the queue are handed on as they arrive,
complete lines at a time, so that this client parses and merges them while the rest still travels and the head node
waits on squeue."""

from __future__ import annotations

import io
from collections.abc import Callable

from cluster_tools.model.runs.status_reply import (
    RECORDS_FROM_MARK,
    RecordsPart,
    StatusReply,
    queue_separator,
    records_header,
    reply_after_records_part,
    split_status_reply,
)

HEADER_MAX = 4096 + 80  # the header line and the file's first bytes (up to 4 KiB) it announces
PIECE_MIN = 128 * 1024  # records handed on at a time, at least: fewer calls, each still a fraction of a first read


OnRecords = Callable[[int, bytes, "bytes | None"], bool]


class StatusStream(io.BytesIO):
    """Collects the reply. Until the line with ``mark`` (which ends the records sent before the queue), hands on each
    stretch of complete record lines as ``on_records(start, chunk, first)``: the records file from byte ``start``,
    and its first bytes (None: the stretch continues the last one). The first stretch holds at least ``least``
    bytes (what the client already has past ``start``, which it checks). Called in the thread that reads the
    connection: what arrives meanwhile waits in the connection's buffer. A stretch not taken (False) stops the
    handing on, and ``reply()`` then says nothing can be believed (the client reads again, from the first byte).
    ``reply()`` splits the whole reply, from the first record not handed on; ``continued``: that is not the first."""

    def __init__(self, mark: str, on_records: OnRecords, least: int = 0, piece: int = PIECE_MIN) -> None:
        super().__init__()
        self._mark = mark
        self._separator = queue_separator(mark)
        self._tail = b""  # the last bytes written, fewer than a separator's: one may span two writes
        self._on_records: OnRecords | None = on_records
        self._least, self._piece = least, piece
        self._first = b""
        self._handed = -1  # where in the reply the records not handed on yet begin (-1: the header is not read)
        self._offset = 0  # the records file's byte at that place
        self.continued = False  # a stretch was handed on: the reply goes on from its end
        self._refused = False

    def write(self, data: bytes, /) -> int:  # type: ignore[override]  # BytesIO takes any buffer; we are given bytes
        written = super().write(data)
        if self._on_records is not None:
            self._take(data)
        return written

    def _take(self, data: bytes) -> None:
        keep = len(self._separator) - 1
        ended = self._separator in data or self._separator in self._tail + data[:keep]
        self._tail = (self._tail + data[-keep:])[-keep:]
        with self.getbuffer() as view:  # views, not getvalue(): a shared buffer is copied whole at the next write
            if self._handed < 0 and not self._read_header(bytes(view[:HEADER_MAX])):
                return
            if ended:
                self._end(bytes(view[self._handed :]))
            elif len(view) - self._handed >= max(self._piece, self._least) + keep:
                # not the last bytes: the separator's own first newline may be among them
                self._hand_on(bytes(view[self._handed : len(view) - keep]))

    def _read_header(self, prefix: bytes) -> bool:
        header = records_header(prefix)
        if header is None:
            if not prefix.startswith(RECORDS_FROM_MARK[: len(prefix)]) or len(prefix) >= HEADER_MAX:
                self._on_records = None  # an older status.sh's reply: the queue first, split at the end
            return False
        self._offset, self._first, self._handed = header
        return True

    def _hand_on(self, received: bytes) -> None:
        """The complete lines of ``received`` (the reply from the first record not handed on)."""
        lines = received[: received.rfind(b"\n") + 1]
        if len(lines) < self._least or not lines or self._on_records is None:
            return
        if not self._on_records(self._offset, lines, None if self.continued else self._first):
            self._on_records, self._refused = None, True
            return
        self._handed += len(lines)
        self._offset += len(lines)
        self._least, self.continued = 0, True

    def _end(self, received: bytes) -> None:
        self._hand_on(received[: received.find(self._separator)])
        self._on_records = None

    def reply(self) -> StatusReply:
        """The reply, split (status_reply.split_status_reply); with ``start`` at the first record not handed on."""
        if self._handed < 0:
            return split_status_reply(self.getvalue(), self._mark)
        if self._refused:
            return StatusReply("", False, -1, b"")
        with self.getbuffer() as view:
            received = bytes(view[self._handed :])
        at = received.find(self._separator)
        if at < 0:  # cut short: nothing to believe
            return StatusReply("", False, -1, b"")
        part = RecordsPart(self._offset, self._first, received[:at], at + len(self._separator))
        return reply_after_records_part(part, received[part.queue_at :])
