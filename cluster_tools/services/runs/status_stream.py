"""status.sh's reply as it comes (issue 16): the records it sends before the queue are handed on as soon as they are
whole, so that this client parses and merges them while the head node still waits on squeue."""

from __future__ import annotations

import io
from collections.abc import Callable

from cluster_tools.model.runs.status_reply import RecordsPart, first_records_part, queue_separator


class StatusStream(io.BytesIO):
    """Collects the reply (``getvalue()``); the first time it holds the records part before ``mark`` whole, calls
    ``on_records_part`` with it (in the thread that reads the connection: the rest of the reply, a few lines of
    queue, waits in the connection's buffer meanwhile)."""

    def __init__(self, mark: str, on_records_part: Callable[[RecordsPart], None]) -> None:
        super().__init__()
        self._mark = mark
        self._separator = queue_separator(mark)
        self._searched = 0  # the separator does not end before this byte
        self._on_records_part: Callable[[RecordsPart], None] | None = on_records_part

    def write(self, data: bytes, /) -> int:  # type: ignore[override]  # BytesIO takes any buffer; we are given bytes
        written = super().write(data)
        if self._on_records_part is not None:
            end = self.tell()
            begin = max(0, self._searched - len(self._separator) + 1)
            with self.getbuffer() as view:  # only the new bytes (and a separator's length before) are searched
                found = bytes(view[begin:end]).find(self._separator)
            self._searched = end
            if found >= 0:
                on_records_part, self._on_records_part = self._on_records_part, None
                part = first_records_part(self.getvalue(), self._mark)
                if part is not None:
                    on_records_part(part)
        return written
