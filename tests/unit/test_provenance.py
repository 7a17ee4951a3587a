"""provenance.json beside every subject's outputs: what ran (command, image), with what it asked and used,
on which node, from which spec, subject list and code; written by the wrapper (bash here, a stand-in aws)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cluster_tools import __version__
from cluster_tools.render.run_scripts import render_dataset_description
from tests.unit.run_fixtures import lay_out_run_dir, make_run, run_task

FAKE_AWS = '#!/bin/bash\nmkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'
COMMAND = (
    'echo "it\'s \\"quoted\\"" > "$OUTPUT_DIR/out.txt"; i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done; exit 3'
)


def test_every_subject_says_how_its_outputs_were_made(tmp_path: Path):
    run = make_run(("sub-1", "sub-2"), command=COMMAND)
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [], "workdir_sha256": "f" * 64})
    directory = lay_out_run_dir(tmp_path, run, FAKE_AWS)
    (directory / "dataset_description.json").write_text(render_dataset_description(run))  # as submit uploads it
    done = run_task(tmp_path, directory)
    assert done.returncode == 3, done.stderr
    provenance = json.loads((tmp_path / "s3" / "sub-1" / "provenance.json").read_text())
    assert provenance["generated_by"] == {"name": "clustertools", "version": __version__}
    assert (provenance["run"], provenance["subject"], provenance["attempt"]) == (run.run_id, "sub-1", 1)
    assert (provenance["state"], provenance["exit_code"], provenance["command"]) == ("FAILED", 3, COMMAND)
    assert provenance["asked"] == {
        "cpus": run.job.cpus,
        "mem": run.job.mem,
        "time": run.job.time,
        "gpus": 0,
        "partition": None,
    }
    used = provenance["used"]
    assert used["cpu_seconds"] is not None and used["cpu_seconds"] >= 0 and used["wall_seconds"] >= 0
    assert used["peak_memory_mb"] is None  # no memory cgroup of the task's own here
    assert provenance["node"]["job_id"] == "7_0" and provenance["container"] is None
    assert provenance["spec_sha256"] == run.spec_hash and provenance["workdir_sha256"] == "f" * 64
    assert provenance["subjects_sha256"] == hashlib.sha256(b"sub-1\nsub-2").hexdigest()
    assert provenance["start"] and provenance["end"] >= provenance["start"]
    summary = json.loads((tmp_path / "s3" / "dataset_description.json").read_text())  # the run's, at its root
    assert summary["DatasetType"] == "derivative" and summary["GeneratedBy"][0]["Name"] == "clustertools"
    assert summary["clustertools"]["command"] == COMMAND and summary["clustertools"]["subjects"] == 2
    assert summary["clustertools"]["subjects_sha256"] == provenance["subjects_sha256"]
    record = json.loads(next((directory / "records" / "new").glob("sub-1.1.FAILED.json")).read_text())
    assert record["cpu_s"] == used["cpu_seconds"] and record["peak_mem_mb"] is None


def test_the_report_says_asked_against_used():
    from cluster_tools.model.runs.report_usage import SubjectUsage, usage_lines

    rows = (
        SubjectUsage("a", 1, 1024.0, 2, 100.0, 30.0, 60.0),
        SubjectUsage("b", 1, 1024.0, 2, 400.0, 60.0, 60.0),
        SubjectUsage("c", 2, 1024.0, 2, None, None, 10.0),
    )
    assert usage_lines(rows) == [
        "memory: asked 1024 MB a task; peak median 250 MB, max 400 MB (39% of asked at most) over 2 task(s)",
        "CPU: 2 asked a task; busy median 38% of them over its wall time, over 2 task(s)",
    ]
    assert usage_lines(rows[2:]) == []
