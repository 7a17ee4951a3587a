"""status.sh's reply as it comes (issue 16): the records it sends before the queue are handed on as soon as they are
whole, so that this client parses and merges them while the head node still waits on squeue."""

from __future__ import annotations

import io
from collections.abc import Callable

from cluster_tools.model.runs.status_reply import (
    RecordsPart,
    StatusReply,
    first_records_part,
    queue_separator,
    reply_after_records_part,
    split_status_reply,
)


class StatusStream(io.BytesIO):
    """Collects the reply; the first time it holds the records part before ``mark`` whole, calls ``on_records_part``
    with it (in the thread that reads the connection: the rest of the reply, a few lines of queue, waits in the
    connection's buffer meanwhile). ``reply()`` splits the whole of it, without copying that part again."""

    def __init__(self, mark: str, on_records_part: Callable[[RecordsPart], None]) -> None:
        super().__init__()
        self._mark = mark
        self._separator = queue_separator(mark)
        self._tail = b""  # the last bytes written, fewer than a separator's: one may span two writes
        self._on_records_part: Callable[[RecordsPart], None] | None = on_records_part
        self.records_part: RecordsPart | None = None

    def write(self, data: bytes, /) -> int:  # type: ignore[override]  # BytesIO takes any buffer; we are given bytes
        written = super().write(data)
        if self._on_records_part is not None:
            keep = len(self._separator) - 1
            if self._separator in data or self._separator in self._tail + data[:keep]:
                on_records_part, self._on_records_part = self._on_records_part, None
                self.records_part = first_records_part(self.getvalue(), self._mark)
                if self.records_part is not None:
                    on_records_part(self.records_part)
            else:
                self._tail = (self._tail + data[-keep:])[-keep:]
        return written

    def reply(self) -> StatusReply:
        """The reply, split (status_reply.split_status_reply)."""
        if self.records_part is None:
            return split_status_reply(self.getvalue(), self._mark)
        with self.getbuffer() as view:
            rest = bytes(view[self.records_part.queue_at :])
        return reply_after_records_part(self.records_part, rest)
