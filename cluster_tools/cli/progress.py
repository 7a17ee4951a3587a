"""A progress bar for `status --watch` (rich), on stderr so --json output stays clean."""

from __future__ import annotations

from cluster_tools.run_status import RunStatus


class RunProgress:
    """Context manager: ``update(status)`` after each refresh. Does nothing when disabled."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._said: set[str] = set()

    def __enter__(self) -> "RunProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def update(self, status: RunStatus) -> None:
        if not self._progress:
            return
        counts = status.counts
        done = len(status.subjects) - counts["PENDING"] - counts["RUNNING"]
        self._progress.update(self._task, completed=done, description=status.counts_text())
        for line in status.blocked:  # said once, above the bar: waiting will not end it
            if line not in self._said:
                self._said.add(line)
                self._progress.console.print(f"warning: {line}", markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.__exit__(*exc)
