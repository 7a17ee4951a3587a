"""Figure 6: `clustertools cancel RUN` of a 100,000-task run vs one OpenSSH `ssh host scancel` of a run's array ids."""

from __future__ import annotations

from benchmarks.harness import CLUSTERTOOLS, Row, clean_env, run_measured, say
from benchmarks.runs import submit_run
from benchmarks.slurm_figures import Context, ssh_baseline_argv


def figure_cancel(ctx: Context) -> None:
    """Both runs pending (the partition is DOWN): ours also reads the run's status first and writes every pending
    subject's CANCELLED record (one file), which scancel alone does not."""
    ctx.ready()
    n = ctx.sizes.memory_tasks
    say(f"figure 6: cancel of a {n}-task run vs one `ssh host scancel` of its array ids")
    ours_run = ctx.memory_run or submit_run(ctx.box, "bench-cancel", n)
    base_run = submit_run(ctx.box, "bench-cancel-base", n)
    env = clean_env(ctx.box.state)
    ours = run_measured([str(CLUSTERTOOLS), "cancel", ours_run.run.run_id], env=env, cwd=ours_run.project_dir)
    ids = " ".join(c.job_id for c in base_run.run.attempts[-1].chunks)
    base = run_measured([*ssh_baseline_argv(ctx.box)[:-1], f"scancel {ids}"], env=env)
    if ours.returncode != 0 or base.returncode != 0:
        raise RuntimeError(f"cancel exited {ours.returncode}, ssh scancel {base.returncode}")
    ratio = ours.seconds / base.seconds
    ctx.report.add(Row(f"cancel {n:,} tasks (process)", f"{ours.seconds:.2f} s", f"{base.seconds:.2f} s ssh scancel",
                       f"{ratio:.2f}x", "<= 2x", ratio <= 2))
