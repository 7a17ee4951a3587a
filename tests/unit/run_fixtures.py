"""A fixed run record for the pure tests of run scripts and status."""

from __future__ import annotations

from cluster_tools.config import JobSpec
from cluster_tools.runs import Attempt, Chunk, RunRecord


def make_run(subjects=("sub-01", "sub-02", "sub-03"), *, command="echo \"$SUBJECT\" > \"$OUTPUT_DIR/x\"",
             columns=(), rows=(), chunks=None, **job) -> RunRecord:
    chunks = chunks if chunks is not None else [Chunk(index=0, offset=0, count=len(subjects), job_id="12")]
    return RunRecord(
        run_id="demo-1", project="demo", cluster="sandbox", created_at="2026-11-22T05:00:00+00:00",
        spec_hash="abc123", remote_dir="/home/u/.clustertools/runs/demo-1", output="s3://bucket-1/study",
        job=JobSpec(command=command, **job), columns=list(columns),
        attempts=[Attempt(number=1, subjects=list(subjects), rows=[list(r) for r in rows], chunks=chunks)],
    )
