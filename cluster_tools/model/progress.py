"""Where a long operation says what it is doing: the one progress type services take.

A service calls ``progress(line)`` with one line for a person (``starting slurmctld``, ``uploading
s3://...``); the CLI decides where it goes (stderr, rich's status line: cli/progress_display.py's StackDisplay.progress)
or drops it (--json). A plain function, ``list.append`` or ``lambda _: None`` all satisfy it.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, line: str, /) -> None: ...
