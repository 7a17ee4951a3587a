"""A fixed run record for the pure tests of run scripts and status."""

from __future__ import annotations

from cluster_tools.model.project.project_config import JobSpec
from cluster_tools.model.runs.run_record import Attempt, Chunk, RunRecord
from cluster_tools.model.runs.run_status import RunStatus, merge_status
from cluster_tools.model.runs.status_reply import parse_records, split_status_reply
from cluster_tools.slurm.queue import parse_squeue


def parse_status(run: RunRecord, text: str) -> RunStatus:
    """status.sh's whole output (``text``), split and merged as services/runs/run_follow.py merges a full read."""
    reply = split_status_reply(text.encode("utf-8", "surrogateescape"))
    return merge_status(run, parse_records(reply.records), parse_squeue(reply.queue), queue_readable=reply.queue_ok)


def make_run(
    subjects=("sub-01", "sub-02", "sub-03"),
    *,
    command='echo "$SUBJECT" > "$OUTPUT_DIR/x"',
    columns=(),
    rows=(),
    chunks=None,
    **job,
) -> RunRecord:
    chunks = chunks if chunks is not None else [Chunk(index=0, offset=0, count=len(subjects), job_id="12")]
    return RunRecord(
        run_id="demo-1",
        project="demo",
        cluster="sandbox",
        created_at="2026-11-22T05:00:00+00:00",
        spec_hash="abc123",
        remote_dir="/home/u/.clustertools/runs/demo-1",
        output="s3://bucket-1/study",
        job=JobSpec(command=command, **job),
        columns=list(columns),
        attempts=[Attempt(number=1, subjects=list(subjects), rows=[list(r) for r in rows], chunks=chunks)],
    )


def lay_out_run_dir(tmp_path, run: RunRecord, fake_aws: str):
    """The head node's run dir as submit leaves it (wrapper.sh and attempt 1's manifest) under
    ``tmp_path/run``, and ``fake_aws`` as ``tmp_path/bin/aws``. Returns the run dir."""
    from cluster_tools.render.run_scripts import render_manifest, render_wrapper

    directory = tmp_path / "run"
    (directory / "attempts" / "1").mkdir(parents=True)
    (directory / "wrapper.sh").write_text(render_wrapper(run))
    (directory / "attempts" / "1" / "manifest").write_text(render_manifest(run.columns, run.attempts[0]))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "aws").write_text(fake_aws)
    (tmp_path / "bin" / "aws").chmod(0o755)
    return directory


def run_task(tmp_path, directory, task: str = "0", **env: str):
    """wrapper.sh of the run dir as Slurm runs array task ``task`` of attempt 1 (job 7), with ``tmp_path/bin``
    first on PATH and ``tmp_path/scratch`` as TMPDIR (made here); ``env`` adds to its environment."""
    import subprocess

    (tmp_path / "scratch").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        cwd=directory,
        timeout=60,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "SLURM_ARRAY_TASK_ID": task,
            "SLURM_ARRAY_JOB_ID": "7",
            **env,
        },
    )
