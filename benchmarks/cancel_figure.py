"""Figure 6: `clustertools cancel RUN` of a 100,000-task run vs one OpenSSH `ssh host scancel` of a run's array ids."""

from __future__ import annotations

import re

from benchmarks.harness import CLUSTERTOOLS, Row, clean_env, ms, run_measured, say
from benchmarks.runs import submit_run
from benchmarks.slurm_figures import Context, process_floor, ssh_baseline_argv


def figure_cancel(ctx: Context) -> None:
    """Both runs pending (the partition is DOWN): ours also maps each pending task to its subject and writes its
    CANCELLED record (one file, on the head node: templates/run/cancel_run.py), which scancel alone does not."""
    ctx.ready()
    n = ctx.sizes.memory_tasks
    say(f"figure 6: cancel of a {n}-task run vs one `ssh host scancel` of its array ids")
    ours_run = ctx.memory_run or submit_run(ctx.box, "bench-cancel", n)
    base_run = submit_run(ctx.box, "bench-cancel-base", n)
    env = clean_env(ctx.box.state)
    said = ctx.box.work / "cancel.out"
    ours = run_measured(
        [str(CLUSTERTOOLS), "cancel", ours_run.run.run_id], env=env, cwd=ours_run.project_dir, stdout_path=said
    )
    finished = (n + 1) // 2 if ours_run.run.run_id in ctx._with_records else 0  # SUCCEEDED records: not cancelled
    count = re.search(r"cancelled (\d+) subject", said.read_text())
    right = count is not None and int(count.group(1)) == n - finished
    ctx.checks.append("" if right else f"cancel said {said.read_text().strip()!r}, expected {n - finished} cancelled")
    chunks = base_run.run.attempts[-1].chunks
    job_ids = [c.job_id for c in chunks if c.job_id is not None]
    if len(job_ids) != len(chunks):
        raise RuntimeError("an array of the baseline run has no job id")
    ids = " ".join(job_ids)
    base = run_measured([*ssh_baseline_argv(ctx.box)[:-1], f"scancel {ids}"], env=env)
    if ours.returncode != 0 or base.returncode != 0:
        raise RuntimeError(f"cancel exited {ours.returncode}, ssh scancel {base.returncode}")
    ratio = ours.seconds / base.seconds
    ctx.report.add(
        Row(
            f"cancel {n:,} tasks (process)",
            f"{ours.seconds:.2f} s",
            f"{base.seconds:.2f} s ssh scancel",
            f"{ratio:.2f}x",
            "<= 2x",
            ratio <= 2,
        )
    )

    floor = process_floor(env, ctx.sizes.reps)
    ctx.report.note(
        f"one sample each (a cancel cannot be repeated on one run, and Slurm keeps a cancelled run's 100,000 "
        f"tasks for MinJobAge, 300 s, so MaxJobCount leaves no room for more); "
        f"floor of any clustertools process (Python, its imports, a paramiko connection and one `true`): "
        f"{ms(floor)}; net of it, cancel {ms(ours.seconds - floor)} vs OpenSSH's whole `ssh host scancel` "
        f"{ms(base.seconds)}"
    )
