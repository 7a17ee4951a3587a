"""`results push` finishes the uploads of outputs that tasks kept on the head node (issue 11, item 7),
and `resubmit` leaves those subjects to it instead of computing them again. The head node's side (the
push script, status.sh) runs here under bash, with a stand-in aws that copies to a local folder."""

from __future__ import annotations

import contextlib
import json

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.render.run_scripts import render_status_script
from cluster_tools.services.runs.results_push import push_kept_outputs
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run
from tests.unit.test_output_check import LocalHead

FAKE_AWS = """#!/bin/bash
# aws s3 cp --quiet --recursive DIR/ s3://bucket-1/PREFIX/ -> ROOT/s3/PREFIX/
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -e $root/s3-down ]] && { echo "Could not connect to the endpoint URL" >&2; exit 1; }
dst=${@: -1}
mkdir -p "$root/s3/${dst#s3://bucket-1/}" && cp -R "${@: -2:1}." "$root/s3/${dst#s3://bucket-1/}"
"""


def record(subject: str, attempt: int, state: str, code: int, **extra) -> str:
    return (
        json.dumps(
            {
                "subject": subject,
                "attempt": attempt,
                "state": state,
                "exit_code": code,
                "error": "",
                "start": "2026-11-30T05:00:00Z",
                "end": "2026-11-30T05:08:00Z",
                "node": "vm",
                "job_id": "7_0",
                "kept": "",
                **extra,
            }
        )
        + "\n"
    )


@pytest.fixture
def head(tmp_path):
    run = make_run(("sub-1", "sub-2", "sub-3"))
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run")})
    directory = tmp_path / "run"
    (directory / "records" / "new").mkdir(parents=True)
    (directory / "status.sh").write_text(render_status_script(run))
    for subject, code in (("sub-1", 0), ("sub-2", 3)):  # sub-2's command failed, and its upload too
        kept = directory / "unsent" / f"{subject}.1"
        (kept / subject).mkdir(parents=True)
        (kept / subject / "out.txt").write_text(subject)
        (kept / ".clustertools" / "records").mkdir(parents=True)
        state = "SUCCEEDED" if code == 0 else "FAILED"
        (kept / ".clustertools" / "records" / f"{subject}.1.json").write_text(record(subject, 1, state, code))
        (directory / "records" / "new" / f"{subject}.1.FAILED.json").write_text(
            record(subject, 1, "FAILED", 96, error="uploading to S3 failed", kept=str(kept))
        )
    (directory / "records" / "new" / "sub-3.1.SUCCEEDED.json").write_text(record("sub-3", 1, "SUCCEEDED", 0))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "aws").write_text(FAKE_AWS)
    (tmp_path / "bin" / "aws").chmod(0o755)
    return run, LocalHead(tmp_path / "bin")


def connect_to(conn):
    return lambda cluster: contextlib.nullcontext(conn)


def test_push_uploads_the_kept_outputs_and_records_the_commands_own_outcome(head, tmp_path):
    run, conn = head
    result = push_kept_outputs(StateDir(tmp_path / "state"), run, None, connect_to(conn))
    assert result.failed == {}
    assert [(s.subject, s.state, s.exit_code, s.kept) for s in result.pushed] == [
        ("sub-1", "SUCCEEDED", 0, ""),
        ("sub-2", "FAILED", 3, ""),
    ]
    s3 = tmp_path / "s3" / "study" / "demo-1"
    assert (s3 / "sub-1" / "out.txt").read_text() == "sub-1"
    assert parse_records((s3 / ".clustertools" / "records" / "sub-1.1.json").read_text())[0].state == "SUCCEEDED"
    assert not (tmp_path / "run" / "unsent" / "sub-1.1").exists(), "pushed outputs leave the head node"
    with pytest.raises(ConfigError, match="has no outputs kept on the head node"):
        push_kept_outputs(StateDir(tmp_path / "state"), run, None, connect_to(conn))


def test_a_push_while_s3_is_still_down_keeps_everything_and_says_why(head, tmp_path):
    run, conn = head
    (tmp_path / "s3-down").touch()
    result = push_kept_outputs(StateDir(tmp_path / "state"), run, None, connect_to(conn), ("sub-1",))
    assert result.pushed == () and result.failed == {"sub-1": "upload failed: Could not connect to the endpoint URL"}
    assert (tmp_path / "run" / "unsent" / "sub-1.1" / "sub-1" / "out.txt").exists()


def test_resubmit_leaves_kept_outputs_to_push(head, tmp_path, monkeypatch):
    from cluster_tools.services.runs import resubmit as resubmit_service

    run, conn = head
    notes: list[str] = []
    with pytest.raises(ConfigError) as info:  # only kept subjects failed: nothing to recompute
        resubmit_service.resubmit(
            StateDir(tmp_path / "state"),
            run,
            "head",
            connect_to(conn),
            failed=True,
            missing=False,
            dry_run=True,
            progress=notes.append,
        )
    assert "keep their outputs on the head node" in info.value.one_line()
    assert "clustertools results push demo-1" in info.value.one_line()
    _, rerun = resubmit_service.resubmit(
        StateDir(tmp_path / "state"),
        run,
        "head",
        connect_to(conn),
        failed=True,
        missing=False,
        dry_run=True,
        progress=notes.append,
        recompute_kept=True,
    )
    assert rerun == ["sub-1", "sub-2"]


def test_down_refuses_while_outputs_wait_on_the_head_node(head, tmp_path):
    """Taking the cluster down would delete the head node's home, and with it the only copy of those outputs."""
    from types import SimpleNamespace

    from cluster_tools.services.clusters.lifecycle_down import describe_unfinished, unfinished_subjects
    from cluster_tools.store.run_store import save_run

    run, conn = head
    state = StateDir(tmp_path / "state")
    save_run(state, run)
    unfinished = unfinished_subjects(state, SimpleNamespace(name=run.cluster), connect_to(conn))
    assert describe_unfinished(unfinished) == (
        "run demo-1: 2 with outputs kept on the head node after a failed upload (sub-1, sub-2; "
        "`clustertools results push demo-1` uploads them)"
    )
    push_kept_outputs(state, run, None, connect_to(conn))
    assert unfinished_subjects(state, SimpleNamespace(name=run.cluster), connect_to(conn)) == []
