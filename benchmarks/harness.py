"""What every figure needs: sizes, timing, measured child processes, the private sandbox, the table."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster_tools.model.clusters.cluster_record import ClusterRecord
    from cluster_tools.transport.remote_shell import RemoteShell

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
CLUSTERTOOLS = REPO / ".venv" / "bin" / "clustertools"
AWS = REPO / ".venv" / "bin" / "aws"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass(frozen=True)
class Sizes:
    status_tasks: int
    ls_keys: int
    get_files: int
    memory_tasks: int
    sbatch_sample: int
    reps: int
    cost_subjects: int = 1_000

    @classmethod
    def full(cls, reps: int) -> Sizes:
        return cls(
            status_tasks=10_000,
            ls_keys=20_000,
            get_files=1_000,
            memory_tasks=100_000,
            sbatch_sample=100,
            reps=reps,
            cost_subjects=1_000,
        )

    @classmethod
    def quick(cls, reps: int) -> Sizes:
        return cls(
            status_tasks=1_000,
            ls_keys=2_000,
            get_files=100,
            memory_tasks=10_000,
            sbatch_sample=20,
            reps=reps,
            cost_subjects=160,
        )


@dataclass
class Row:
    figure: str
    ours: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None  # None: informational, no target
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        say(
            f"  {row.figure}: ours {row.ours}, baseline {row.baseline}, ratio {row.ratio} "
            f"(target {row.target}) {verdict(row.ok)}"
        )

    def note(self, text: str) -> None:
        self.notes.append(text)
        say(f"  note: {text}")

    @property
    def all_ok(self) -> bool:
        return bool(self.rows) and all(r.ok is not False for r in self.rows)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("OK" if ok else "MISS")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def median_time(fn: Callable[[], object], reps: int) -> tuple[float, list[float]]:
    """Median wall time of ``reps`` calls of ``fn`` (seconds), and every sample."""
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def clean_env(state: Path | None = None, **extra: str) -> dict[str, str]:
    """This environment without proxies (everything here is on loopback), with the state dir set."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("CLUSTERTOOLS_DEBUG", None)
    # What users get: an installed package has its modules compiled (pip compiles them at install). Without this,
    # a machine that sets PYTHONDONTWRITEBYTECODE (this one does) compiles every module from source in every process.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if state is not None:
        env["CLUSTERTOOLS_STATE_DIR"] = str(state)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Measured:
    seconds: float
    returncode: int
    max_rss_kb: int
    cpu_seconds: float = 0.0  # user + system time of the process itself


def run_measured(
    argv: list[str], *, env: dict[str, str], cwd: Path | None = None, stdout_path: Path | None = None
) -> Measured:
    """Run one child process to its end: wall time, exit code and ITS OWN peak RSS (wait4, not the
    cumulative RUSAGE_CHILDREN maximum that earlier children would pollute)."""
    with open(stdout_path, "wb") if stdout_path else contextlib.nullcontext(subprocess.DEVNULL) as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        say(f"  {' '.join(map(str, argv[:4]))} ... exited {proc.returncode}: {err.decode(errors='replace')[-800:]}")
    return Measured(seconds, proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


def median_process(argv: list[str], reps: int, **kwargs) -> tuple[float, list[Measured]]:
    runs = [run_measured(argv, **kwargs) for _ in range(reps)]
    failed = [r for r in runs if r.returncode != 0]
    if failed:
        raise RuntimeError(f"{argv[0]} exited {failed[0].returncode}")
    return statistics.median(r.seconds for r in runs), runs


class Sandbox:
    """A private sandbox in a fresh state dir: started here, and always stopped (and purged) here."""

    def __init__(self, max_job_count: int = 250_000) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="clustertools-bench-"))
        self.state = self.work / "state"
        self.state.mkdir()
        self.max_job_count = max_job_count
        self.status: dict = {}
        self._record: ClusterRecord | None = None  # once up
        self.remote_dirs: list[str] = []  # run directories made on the head node, removed at the end

    def cli(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PYTHON), "-m", "cluster_tools", *args],
            cwd=cwd,
            env=clean_env(self.state),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def up(self) -> None:
        from cluster_tools.store.cluster_store import load_cluster
        from cluster_tools.store.state_dir import StateDir

        start = time.perf_counter()
        # One static node of 16 CPUs: the c6i.4xlarge the cost figure prices, up before any figure starts.
        result = self.cli(
            "sandbox",
            "up",
            "--json",
            "--max-job-count",
            str(self.max_job_count),
            "--nodes",
            "1",
            "--static-nodes",
            "1",
            "--cpus-per-node",
            "16",
            "--min-job-age",
            "10",
        )
        if result.returncode != 0:
            raise RuntimeError(f"sandbox up failed: {result.stderr.strip()}")
        self.status = json.loads(result.stdout)
        self._record = load_cluster(StateDir(self.state), "sandbox")
        if self.record.user == "root":  # users meet a login user on ParallelCluster: so must the figures
            raise RuntimeError("the sandbox's SSH user is root: the figures would not be what users get")
        say(
            f"sandbox up in {time.perf_counter() - start:.1f} s as {self.record.user}@{self.record.host} "
            f"(state {self.state})"
        )

    @property
    def record(self) -> ClusterRecord:
        """The sandbox's cluster record: only once ``up`` has run."""
        if self._record is None:
            raise RuntimeError("the benchmark's sandbox is not up")
        return self._record

    def connect(self) -> RemoteShell:
        from cluster_tools.services.remote.cluster_shell import connect

        return connect(self.record)

    def down(self) -> None:
        if self._record is not None and self.remote_dirs:
            try:
                with self.connect() as conn:
                    conn.run(["rm", "-rf", *self.remote_dirs], timeout=300)
            except Exception as exc:  # the sandbox must still go down
                say(f"could not remove the benchmark's run directories: {exc}")
        result = self.cli("sandbox", "down", "--purge", timeout=600)
        say("sandbox down" if result.returncode == 0 else f"sandbox down FAILED: {result.stderr.strip()}")
        subprocess.run(["rm", "-rf", str(self.work)], check=False)

    @property
    def s3_endpoint(self) -> str:
        return self.status["s3_endpoint_url"]

    @property
    def bucket(self) -> str:
        return self.status["buckets"][0]


def print_table(report: Report, title: str) -> None:
    headers = ("figure", "ours", "baseline", "ratio", "target", "OK/MISS")
    rows = [(r.figure, r.ours, r.baseline, r.ratio, r.target, verdict(r.ok)) for r in report.rows]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)
    for r in report.rows:
        if r.note:
            print(f"* {r.figure}: {r.note}")
    for note in report.notes:
        print(f"* {note}")
    sys.stdout.flush()


def paired(ours: Callable[[], object], baseline: Callable[[], object], reps: int) -> tuple[float, float]:
    """Medians of ``reps`` alternating runs of both sides (so drift on a busy machine hits both alike)."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(reps):
        for fn, samples in ((ours, a), (baseline, b)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)
