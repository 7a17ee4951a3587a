"""Progress on stderr (rich), so --json output stays clean: a bar for `status --watch`, a status line and the
stack's events while `up` or `update` waits for ParallelCluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads only when a display is shown
    from types import TracebackType

    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.status import Status

    from cluster_tools.model.runs.run_status import RunStatus
    from cluster_tools.transport.pcluster import ClusterDescription, StackEvent


class RunProgress:
    """Context manager: ``update(status)`` after each refresh. Does nothing when disabled."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._said: set[str] = set()

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def update(self, status: RunStatus) -> None:
        if not self._progress or self._task is None:
            return
        counts = status.counts
        done = len(status.subjects) - counts["PENDING"] - counts["RUNNING"]
        self._progress.update(self._task, completed=done, description=status.counts_text())
        for line in status.blocked:  # said once, above the bar: waiting will not end it
            if line not in self._said:
                self._said.add(line)
                self._progress.console.print(f"warning: {line}", markup=False, highlight=False)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress:
            self._progress.__exit__(kind, exc, tb)


class StackDisplay:
    """While `up` or `update` waits for the stack: each CloudFormation event as a line on stderr, under a rich status
    line with the cluster's status and the minutes waited. Nothing with --json (stdout stays JSON)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled, self._started = enabled, 0.0
        self._status: Status | None = None
        self._console: Console | None = None

    def event(self, event: StackEvent) -> None:
        from cluster_tools.services.aws.stack_progress import describe_event

        self._line(describe_event(event), style="red" if event.status.endswith("FAILED") else None)

    def progress(self, line: str) -> None:
        self._line(line)

    def _line(self, text: str, style: str | None = None) -> None:
        if not self.enabled:
            return
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        self._console.print(text, markup=False, style=style)

    def __enter__(self) -> StackDisplay:
        import time

        self._started = time.monotonic()
        return self

    def update(self, described: ClusterDescription) -> None:
        if not self.enabled:
            return
        import time

        minutes = int((time.monotonic() - self._started) // 60)
        text = f"{described.name}: {described.status} (stack {described.stack_status}, {minutes} min)"
        if self._status is None:
            from rich.console import Console

            if self._console is None:
                self._console = Console(stderr=True, highlight=False)
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
