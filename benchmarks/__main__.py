"""dev/benchmark [--quick] [--only NAME] [--reps N]: every figure beside its baseline and its target.

Starts its own sandbox (fresh state dir, MaxJobCount 250000), sets the partition DOWN so submitted
tasks stay PENDING (nothing runs), measures, prints the table, and always stops the sandbox.
Exit code 0 when every figure meets its target, 1 otherwise (2: the sandbox could not start).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from benchmarks.harness import Report, Row, Sandbox, Sizes, print_table, say

# The order matters: cost runs first (its tasks really run; the others set the partition down), and the
# 100,000-task runs go last (memory, then cancel), so the other figures see only their own queue.
FIGURES = ("cost", "submit", "status", "cli", "results", "memory", "cancel")


def _figure(name: str):
    from benchmarks import cancel_figure, cost_figure, s3_figures, slurm_figures

    return {
        "cost": cost_figure.figure_cost,
        "submit": slurm_figures.figure_submit,
        "status": slurm_figures.figure_status,
        "cli": slurm_figures.figure_cli,
        "results": s3_figures.figure_results,
        "memory": slurm_figures.figure_memory,
        "cancel": cancel_figure.figure_cancel,
    }[name]


def _loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dev/benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: 1,000 tasks, 2,000 keys, 100 files, 10,000 tasks for memory, "
        "160 subjects for cost",
    )
    parser.add_argument(
        "--only",
        choices=FIGURES,
        action="append",
        metavar="NAME",
        help=f"run only this figure (repeatable): {', '.join(FIGURES)}",
    )
    parser.add_argument("--reps", type=int, default=7, help="repetitions per short timing (median); default 7")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = Sizes.quick(args.reps) if args.quick else Sizes.full(args.reps)
    wanted = [f for f in FIGURES if not args.only or f in args.only]
    report = Report()
    started = time.perf_counter()
    load_before = _loadavg()
    box = Sandbox(max_job_count=250_000)
    try:
        try:
            box.up()
        except Exception as exc:
            say(f"the sandbox did not start: {exc}")
            return 2
        from benchmarks.slurm_figures import Context

        ctx = Context(box=box, sizes=sizes, report=report)
        for name in wanted:
            began = time.perf_counter()
            try:
                _figure(name)(ctx)
            except Exception as exc:  # one broken figure must not hide the others
                traceback.print_exc()
                report.add(Row(name, "error", "-", "-", "-", False, note=f"{type(exc).__name__}: {exc}"))
            say(f"  ({name}: {time.perf_counter() - began:.1f} s)")
        correctness = ctx.correctness_row()
        if correctness:
            report.add(correctness)
    finally:
        box.down()
        total = time.perf_counter() - started
        mode = "quick" if args.quick else "full"
        report.notes.append(
            f"machine load average (1 min) at start {load_before}, at end {_loadavg()} "
            f"({os.cpu_count()} CPUs): other work on this machine slows both sides"
        )
        print_table(report, f"clustertools benchmark ({mode}, medians of {sizes.reps}; total {total:.0f} s)")
    return 0 if report.all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
