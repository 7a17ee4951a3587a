"""Figures over the Slurm side of the sandbox: status (in-process and whole process), submit, memory."""

from __future__ import annotations

import json
import math
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field

from benchmarks.harness import (
    CLUSTERTOOLS,
    Report,
    Row,
    Sandbox,
    Sizes,
    clean_env,
    median_time,
    ms,
    paired,
    run_measured,
    say,
)
from benchmarks.runs import SubmittedRun, partition_down, submit_run, write_final_records

SQUEUE = ["squeue", "-h", "-r", "-o", "%i|%T|%j"]


@dataclass
class Context:
    box: Sandbox
    sizes: Sizes
    report: Report
    _partition_down: bool = False
    _status_run: SubmittedRun | None = None
    memory_run: SubmittedRun | None = None  # figure 5's, which figure 6 cancels
    _with_records: set[str] = field(default_factory=set)
    checks: list[str] = field(default_factory=list)  # "" when a status answer was right, else what was wrong

    def check_counts(self, counts: dict[str, int], submitted: SubmittedRun, where: str) -> None:
        """Is the status answer right? (A wrong one is reported, not fatal: the timings still count.)"""
        wanted = _expected_counts(submitted)
        got = {k: v for k, v in counts.items() if v}
        self.checks.append("" if got == wanted else f"{where}: counts {got}, expected {wanted}")
        if got != wanted:
            say(f"  WRONG STATUS {self.checks[-1]}")

    def correctness_row(self) -> Row | None:
        if not self.checks:
            return None
        wrong = [c for c in self.checks if c]
        return Row(
            "status answers right (counts)",
            f"{len(self.checks) - len(wrong)}/{len(self.checks)}",
            "-",
            "-",
            "all",
            not wrong,
            note="; ".join(wrong[:4]),
        )

    def ready(self) -> None:
        if not self._partition_down:
            partition_down(self.box)
            self._partition_down = True

    def status_run(self) -> SubmittedRun:
        """The run of ``status_tasks`` subjects (submitted once, timed: figure 3 reuses the time)."""
        self.ready()
        if self._status_run is None:
            self._status_run = submit_run(self.box, "bench-status", self.sizes.status_tasks)
        return self._status_run

    def with_records(self, submitted: SubmittedRun) -> SubmittedRun:
        if submitted.run.run_id not in self._with_records:
            write_final_records(self.box, submitted)
            self._with_records.add(submitted.run.run_id)
        return submitted


def _expected_counts(submitted: SubmittedRun) -> dict[str, int]:
    done = (submitted.tasks + 1) // 2
    return {"SUCCEEDED": done, "PENDING": submitted.tasks - done}


def figure_status(ctx: Context) -> None:
    """1. read_status of the run over one open connection vs one raw squeue round trip over it: a refresh (the
    client has read the records before; 1% of the subjects wrote one since) and a first read (nothing cached)."""
    from cluster_tools.model.runs.status_merger import StatusMerger
    from cluster_tools.model.runs.status_reply import parse_records, split_status_reply
    from cluster_tools.services.runs.records_cache import RecordsCache
    from cluster_tools.services.runs.run_follow import read_status

    submitted = ctx.with_records(ctx.status_run())
    run, n = submitted.run, submitted.tasks
    say(f"figure 1: status of a {n}-task run vs one squeue round trip")
    link = _Link(ctx.box)
    cache = RecordsCache(None)  # what `status --watch` keeps between refreshes (and `status` in the state dir)
    changing = iter(_running_records(submitted, ctx.sizes.reps))  # 1% of the subjects began, between refreshes
    records_file = (
        f'"$HOME"/{shlex.quote(run.remote_dir[2:])}' if run.remote_dir.startswith("~/") else shlex.quote(run.remote_dir)
    ) + "/records/all.jsonl"
    with link:
        ctx.check_counts(link.call(lambda c: read_status(c, run, cache)).counts, submitted, "read_status warm-up")
        link.call(lambda c: c.run(SQUEUE, timeout=60).check())
        ours_s, first_s, base_s, floor_s = [], [], [], []
        for _ in range(ctx.sizes.reps):  # interleaved, so load from elsewhere hits all alike
            lines = next(changing)
            link.call(
                lambda c, lines=lines: c.run(["sh", "-c", f"cat >>{records_file}"], stdin=lines, timeout=60).check()
            )
            status, seconds = link.timed(lambda c: read_status(c, run, cache))
            ctx.check_counts(status.counts, submitted, "read_status refresh")
            ours_s.append(seconds)
            status, seconds = link.timed(lambda c: read_status(c, run, RecordsCache(None)))
            ctx.check_counts(status.counts, submitted, "read_status first")
            first_s.append(seconds)
            base_s.append(link.timed(lambda c: c.run(SQUEUE, timeout=60).check())[1])
            floor_s.append(link.timed(lambda c: c.run(["true"]).check())[1])
        ours, first, base, floor = (statistics.median(x) for x in (ours_s, first_s, base_s, floor_s))
        # Where the time of ours goes: the remote script (round trip included), then parsing here.
        script = ["bash", f"{run.remote_dir}/status.sh"]
        raw = link.call(lambda c: c.run(script, timeout=120))
        remote, _ = median_time(lambda: link.call(lambda c: c.run(script, timeout=120)), ctx.sizes.reps)
        on_server, _ = median_time(
            lambda: link.call(lambda c: c.run(["sh", "-c", f"bash {run.remote_dir}/status.sh >/dev/null"])),
            ctx.sizes.reps,
        )
        squeue_server, _ = median_time(
            lambda: link.call(lambda c: c.run(["sh", "-c", "squeue -h -r -o '%i|%T|%j' >/dev/null"])), ctx.sizes.reps
        )
    reply = split_status_reply(raw.stdout)
    parse, _ = median_time(lambda: parse_records(reply.records), ctx.sizes.reps)
    records = parse_records(reply.records)
    merge, _ = median_time(lambda: StatusMerger(run).merge(records, reply.queue, queue_readable=True), ctx.sizes.reps)
    ratio = ours / base
    if link.drops:
        ctx.checks.append(f"the SSH connection dropped {link.drops} time(s) while reading status over it: {link.why}")
    ctx.report.note(
        f"an `exec true` round trip over the same connection (interleaved): {ms(floor)}; net of it, "
        f"status {ms(ours - floor)} vs squeue {ms(base - floor)}"
        + (f" = {(ours - floor) / (base - floor):.2f}x" if base > floor else "")
    )
    ctx.report.add(
        Row(
            f"status {n:,} tasks, refresh, 1% changed (open conn)",
            ms(ours),
            ms(base) + " squeue",
            f"{ratio:.2f}x",
            "<= 1.2x",
            ratio <= 1.2,
        )
    )
    ctx.report.add(
        Row(
            f"status {n:,} tasks, first read (open conn)",
            ms(first),
            ms(base) + " squeue",
            f"{first / base:.2f}x",
            "<= 2x",
            first / base <= 2,
        )
    )
    ctx.report.note(
        f"status breakdown ({n:,} tasks): status.sh round trip {ms(remote)} ({len(raw.stdout) / 1e6:.1f} MB), "
        f"status.sh alone on the server (output discarded, incl. one exec) {ms(on_server)}, "
        f"squeue alone likewise {ms(squeue_server)}; here, a first read parses {len(records):,} records in "
        f"{ms(parse)} and merges {n:,} subjects in {ms(merge)}"
    )


def _running_records(submitted: SubmittedRun, reps: int) -> list[bytes]:
    """Per refresh, a RUNNING record (the wrapper's first) for 1% of the run's subjects that are still pending: what
    changed since the last look. Squeue still lists them PENDING, so the expected counts hold."""
    from benchmarks.runs import running_record_lines

    return running_record_lines(submitted, per_batch=max(1, submitted.tasks // 100), batches=reps)


class _Link:
    """One open connection; a sample that loses it is reopened and retried (and counted, not timed)."""

    def __init__(self, box: Sandbox) -> None:
        self.box, self.conn, self.drops, self.why = box, box.connect(), 0, ""

    def __enter__(self) -> _Link:
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()

    def timed(self, fn):
        from cluster_tools.errors import TransportError

        for _ in range(3):
            try:
                start = time.perf_counter()
                result = fn(self.conn)
                return result, time.perf_counter() - start
            except TransportError as exc:
                self.drops += 1
                self.why = self.why or str(exc)
                say(f"  connection lost: {exc}; reconnecting")
                self.conn.close()
                self.conn = self.box.connect()
        raise RuntimeError(f"the SSH connection kept dropping: {self.why}")

    def call(self, fn):
        return self.timed(fn)[0]


def ssh_baseline_argv(box: Sandbox) -> list[str]:
    record = box.record
    return [
        "ssh",
        "-p",
        str(record.port),
        "-i",
        str(record.identity_file),
        "-o",
        f"UserKnownHostsFile={record.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        f"{record.user}@127.0.0.1",
        "squeue -h -r -o '%i|%T|%j'",
    ]


def figure_cli(ctx: Context) -> None:
    """2. the whole `clustertools status RUN --json` process vs a whole OpenSSH `ssh ... squeue` process."""
    submitted = ctx.with_records(ctx.status_run())
    n = submitted.tasks
    say(f"figure 2: `clustertools status RUN --json` process ({n} tasks) vs an `ssh host squeue` process")
    env = clean_env(ctx.box.state)
    ours_argv = [str(CLUSTERTOOLS), "status", submitted.run.run_id, "--json"]
    base_argv = ssh_baseline_argv(ctx.box)
    check = ctx.box.work / "status.json"
    first = run_measured(ours_argv, env=env, cwd=submitted.project_dir, stdout_path=check)
    if first.returncode != 0:
        raise RuntimeError("clustertools status failed")
    ctx.check_counts(json.loads(check.read_text())["counts"], submitted, "status CLI")
    if run_measured(base_argv, env=env).returncode != 0:
        raise RuntimeError("the ssh baseline failed")

    def ours():
        if run_measured(ours_argv, env=env, cwd=submitted.project_dir).returncode != 0:
            raise RuntimeError("clustertools status failed")

    def base():
        if run_measured(base_argv, env=env).returncode != 0:
            raise RuntimeError("ssh failed")

    ours_s, base_s = paired(ours, base, ctx.sizes.reps)
    ratio = ours_s / base_s
    ctx.report.add(
        Row(
            f"`clustertools status --json` process, {n:,} tasks",
            ms(ours_s),
            ms(base_s) + " ssh squeue",
            f"{ratio:.2f}x",
            "<= 1.5x",
            ratio <= 1.5,
        )
    )
    startup, _ = median_time(lambda: run_measured([str(CLUSTERTOOLS), "--version"], env=env), ctx.sizes.reps)
    ctx.report.note(f"`clustertools --version` process alone (start-up floor): {ms(startup)}")
    floor = process_floor(env, ctx.sizes.reps)
    ctx.report.note(
        f"floor of any status process: Python importing the status path, a paramiko SSH connection to the "
        f"head node and one `true` over it: {ms(floor)}; net of it, status {ms(ours_s - floor)} vs "
        f"OpenSSH's whole `ssh host squeue` {ms(base_s)}"
    )


def process_floor(env: dict[str, str], reps: int) -> float:
    """The median time of a process that does only what every clustertools command on a cluster pays first."""

    def floor_process():
        if run_measured([sys.executable, "-c", _CONNECT_FLOOR], env=env).returncode != 0:
            raise RuntimeError("the floor process failed")

    return median_time(floor_process, reps)[0]


# What every `clustertools status` process pays before it reads anything: the interpreter, the imports of the status
# path (click, pydantic, paramiko and cryptography), the SSH handshake in Python, one exec on the head node.
_CONNECT_FLOOR = """
import os
from pathlib import Path
import cluster_tools.cli.run_cmds, cluster_tools.api.run_api, cluster_tools.services.runs.run_follow
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.services.remote.cluster_shell import connect
from cluster_tools.store.state_dir import StateDir
with connect(load_cluster(StateDir(Path(os.environ["CLUSTERTOOLS_STATE_DIR"])), "sandbox")) as conn:
    conn.run(["true"]).check()
from cluster_tools.cli.startup import freeze_at_exit
freeze_at_exit()  # as the clustertools process ends
"""


def figure_submit(ctx: Context) -> None:
    """3. submit of N subjects vs a per-subject sbatch loop over one open connection (sampled, extrapolated)."""
    from cluster_tools.slurm.limits import parse_scontrol_config

    fresh = ctx._status_run is None
    submitted = ctx.status_run()
    n = submitted.tasks
    say(f"figure 3: submit of {n} subjects vs a per-subject sbatch loop")
    if not fresh:
        ctx.report.note("submit was timed when the status run was first submitted")
    sample = ctx.sizes.sbatch_sample
    with ctx.box.connect() as conn:
        limits = parse_scontrol_config(conn.run(["scontrol", "show", "config"], timeout=60).check().text)
        job_ids, floor_s, loop = [], [], 0.0
        for _ in range(sample):
            start = time.perf_counter()
            out = conn.run(["sbatch", "--parsable", "--hold", "--wrap", "true"], timeout=60).check()
            loop += time.perf_counter() - start
            job_ids.append(out.text.strip().split(";")[0])
            start = time.perf_counter()
            conn.run(["true"], timeout=60).check()  # interleaved: what any exec costs here right now
            floor_s.append(time.perf_counter() - start)
        conn.run(["scancel", *job_ids], timeout=60).check()
    extrapolated = loop / sample * n
    floor = statistics.median(floor_s)
    ctx.report.note(
        f"sbatch loop: {loop / sample * 1000:.1f} ms per sbatch exec; an interleaved `exec true` took "
        f"{ms(floor)} (median)"
    )
    speedup = extrapolated / submitted.seconds
    ctx.report.add(
        Row(
            f"submit {n:,} subjects",
            ms(submitted.seconds),
            f"{ms(extrapolated)} sbatch loop",
            f"{speedup:.0f}x faster",
            ">= 100x faster",
            speedup >= 100,
            note=f"loop sampled: {sample} single-task sbatch execs over one open connection took "
            f"{ms(loop)} ({loop / sample * 1000:.1f} ms each), extrapolated to {n:,}; ours includes "
            f"connecting, uploading the manifest and saving the run record",
        )
    )
    bound = math.ceil(n / (limits.max_array_size - 1))
    ctx.report.add(
        Row(
            f"sbatch calls for {n:,} subjects",
            f"{submitted.arrays} arrays",
            f"ceil(N/(MaxArraySize-1)) = {bound}",
            "-",
            "<= bound",
            submitted.arrays <= bound,
        )
    )


def figure_memory(ctx: Context) -> None:
    """5. peak RSS of the `clustertools status` process for a run of ``memory_tasks`` pending tasks."""
    ctx.ready()
    n = ctx.sizes.memory_tasks
    say(f"figure 5: peak memory of `clustertools status` for a {n}-task run")
    try:
        submitted = submit_run(ctx.box, "bench-memory", n)
    except Exception as exc:
        ctx.report.add(
            Row(
                f"status peak RSS, {n:,} tasks",
                "n/a",
                "-",
                "-",
                "< 300 MB",
                False,
                note=f"could not submit {n:,} subjects: {exc}",
            )
        )
        return
    ctx.memory_run = submitted
    ctx.report.note(
        f"submitting {n:,} subjects (held by the DOWN partition) took {submitted.seconds:.1f} s "
        f"({submitted.arrays} arrays); the --json status is the first read after half of them wrote a "
        "record (status.sh folds those files on the head node once), the table one a refresh"
    )
    ctx.with_records(submitted)
    env = clean_env(ctx.box.state)
    out = ctx.box.work / "memory.json"
    for label, extra, path in (("--json", ["--json"], out), ("table", [], None)):
        argv = [str(CLUSTERTOOLS), "status", submitted.run.run_id, *extra]
        measured = run_measured(argv, env=env, cwd=submitted.project_dir, stdout_path=path)
        peak_mb = measured.max_rss_kb / 1024
        ok = measured.returncode == 0 and peak_mb < 300
        if path is not None and measured.returncode == 0:
            ctx.check_counts(json.loads(path.read_text())["counts"], submitted, f"status CLI, {n:,} tasks")
        ctx.report.add(
            Row(
                f"status {label} peak RSS, {n:,} tasks",
                f"{peak_mb:.0f} MB",
                "-",
                "-",
                "< 300 MB",
                ok,
                note=f"the process took {measured.seconds:.1f} s"
                + ("" if measured.returncode == 0 else f", and FAILED (exit {measured.returncode})"),
            )
        )
