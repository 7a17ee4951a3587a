"""What this client has already read of a run's records (issue 16): status fetches only what was appended since.

A run's records/all.jsonl on the head node only grows (status.sh appends the tasks' new records under a lock).
The client keeps the complete lines it has read, in ``<state>/cache/records/<run-id>.jsonl``, and asks status.sh
for the file from a little before their end (``OVERLAP`` bytes): the bytes it already has must come back
unchanged, else the file was truncated, replaced, or is another cluster's (a re-created one), and the read starts
again from the first byte. A wrong cache can cost a second round trip, never a wrong answer. Only complete lines
are taken: a line being appended while status.sh reads is taken whole at the next read.

Two readers at once (two `status --watch`) each keep their own copy in memory; the file on disk is extended under
a lock only when it still ends where this reader's copy began, else replaced whole (temp file and rename).
"""

from __future__ import annotations

import fcntl
import gc
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.model.runs.run_status import RunStatus, TaskRecord
from cluster_tools.model.runs.status_merger import StatusMerger, run_shape
from cluster_tools.model.runs.status_reply import parse_records

OVERLAP = 4096  # bytes read again, to know the file still begins as the cache does


@contextmanager
def cycle_collector_paused():
    """A first read builds tens of thousands of records and statuses, none in a reference cycle: the cyclic
    collector would walk them all again and again as they are made (a sixth of a first read's time, issue 16).
    Reference counting still frees everything; the collector runs again afterwards if it ran before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class RecordsCache:
    path: Path | None  # None: in memory only
    data: bytearray = field(default_factory=bytearray)  # the file's first len(data) bytes: complete lines
    records: list[TaskRecord] = field(default_factory=list)  # parsed from data, in order
    merger: StatusMerger | None = None  # the last merge of these records, refreshed for what changed since
    _loaded: bool = False
    _parsed: bool = False  # records holds all of data
    _saved: int = 0  # the cache file holds data's first bytes up to here

    def start(self) -> int:
        """Where status.sh's reply should begin: a little before the end of what is cached. Reads the cache file,
        and leaves its records to parse() (services/runs/run_follow.py parses them while the head node answers)."""
        self._load()
        return max(0, len(self.data) - OVERLAP)

    @property
    def size(self) -> int:
        """How many bytes of the file are cached."""
        return len(self.data)

    def parse(self) -> None:
        """The records of what was read from the cache file, parsed (once)."""
        self._load()
        if not self._parsed:
            self.records = parse_records(bytes(self.data))
            self._parsed = True

    def absorb(self, start: int, chunk: bytes, first: bytes = b"", *, save: bool = True) -> list[TaskRecord] | None:
        """The file from byte ``start`` as status.sh sent it (``first``: its first bytes, when start > 0): every
        record so far, or None when it does not begin and go on as what is cached (then ``forget()``, read from 0).
        A reply that comes in pieces: this for the first, ``extend`` for the others, and ``save`` the last one."""
        self.parse()
        base = len(self.data)
        # startswith a view: no copy of the megabytes a first read's records part is compared again
        if start < 0 or start > base or not chunk.startswith(memoryview(self.data)[start:]):
            return None
        if start > 0 and (len(first) < min(OVERLAP, base) or not self.data.startswith(first)):
            return None
        return self.extend(base, chunk[base - start :], save=save)

    def extend(self, start: int, chunk: bytes, *, save: bool = True) -> list[TaskRecord] | None:
        """The bytes of the file right after what is cached (``start``: their place), as the rest of a reply whose
        beginning ``absorb`` took: its complete lines; None when they are not right after."""
        if start != len(self.data):
            return None
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if complete:
            self.records.extend(parse_records(complete))
            self.data += complete  # a bytearray: extended in place, piece after piece
        if save:
            self.save()
        return self.records

    def save(self) -> None:
        """What was absorbed since the last save, to the cache file."""
        if len(self.data) > self._saved:
            self._save(self._saved, bytes(memoryview(self.data)[self._saved :]))
            self._saved = len(self.data)

    def forget(self) -> None:
        self.data, self.records, self.merger, self._loaded, self._parsed = bytearray(), [], None, True, True
        self._saved = 0

    def prepare(self, run: RunRecord) -> None:
        """Before the head node answers: the cached records parsed, and the statuses their final records decide."""
        self.parse()
        self._merger_for(run).prepare(self.records)

    def merge(self, run: RunRecord, queue_text: str, queue_readable: bool) -> RunStatus:
        """The run's status from the records read so far and squeue's text: only what changed since the last
        merge of this cache is merged again (status_merger.py)."""
        self.parse()
        return self._merger_for(run).merge(self.records, queue_text, queue_readable=queue_readable)

    def _merger_for(self, run: RunRecord) -> StatusMerger:
        if self.merger is None or self.merger.shape != run_shape(run):
            self.merger = StatusMerger(run)
        return self.merger

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            data = self.path.read_bytes() if self.path is not None else b""
        except OSError:
            data = b""  # no cache yet, or unreadable: a full read
        self.data = bytearray(memoryview(data)[: data.rfind(b"\n") + 1])
        self.records, self._parsed, self._saved = [], not self.data, len(self.data)

    def _save(self, base: int, added: bytes) -> None:
        """Extend the file when it ends where this copy began; else replace it with this copy. Best effort: the
        cache only saves time, so a full disk costs a full read next time, not an error."""
        if self.path is None:
            return
        try:
            for directory in reversed([self.path.parent, *self.path.parent.parents]):  # each made private
                if not directory.is_dir():
                    directory.mkdir(mode=0o700)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                os.chmod(lock.name, 0o600)
                fcntl.flock(lock, fcntl.LOCK_EX)
                size = self.path.stat().st_size if self.path.exists() else -1
                if size == base:
                    with open(self.path, "ab") as handle:
                        handle.write(added)
                else:
                    self._replace(self.path)
        except OSError:
            pass

    def _replace(self, path: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
