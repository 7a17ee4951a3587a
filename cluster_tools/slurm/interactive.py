"""The command line of an interactive Slurm job (``srun --pty``): pure, every word its own."""

from __future__ import annotations

from collections.abc import Sequence


def srun_argv(
    argv: Sequence[str],
    *,
    job_name: str,
    pty: bool,
    partition: str | None = None,
    cpus: int | None = None,
    mem: str | None = None,
    time: str | None = None,
    gpus: int | None = None,
) -> list[str]:
    """``srun`` that allocates a node and runs ``argv`` there; the job ends (and its node is freed)
    when ``argv`` exits. The values are words of an argv: quote the whole for a shell, never paste."""
    words = ["srun"]
    if pty:
        words.append("--pty")
    words.append(f"--job-name={job_name}")
    if partition:
        words.append(f"--partition={partition}")
    if cpus:
        words.append(f"--cpus-per-task={cpus}")
    if mem:
        words.append(f"--mem={mem}")
    if gpus:
        words.append(f"--gres=gpu:{gpus}")
    if time:
        words.append(f"--time={time}")
    return [*words, *argv]
