"""Runs on the real sandbox: submit -> status -> logs -> resubmit, surviving MinJobAge; hostile lists."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.helpers import err, out
from tests.integration.run_helpers import (
    make_project,
    states,
    status,
    submit,
    wait_for_run,
    wait_until_squeue_forgets,
    write_subjects,
)

# Subjects whose number is a multiple of 7 fail with exit 3 on their first attempt only.
COMMAND = (
    'echo "out $SUBJECT"; echo "$SUBJECT $RUN_ID" > "$OUTPUT_DIR/result.txt"; '
    'n=${SUBJECT#sub-}; if [ $((10#$n % 7)) -eq 0 ] && [ "$ATTEMPT" = 1 ]; then echo boom >&2; exit 3; fi'
)


def s3_keys(sandbox, prefix: str) -> list[str]:
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="clustertools-sandbox", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_fifty_subjects_some_fail_status_survives_min_job_age_and_resubmit_reruns_only_those(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "fifty")
    ids = [f"sub-{n:03d}" for n in range(1, 51)]
    failing = {i for i in ids if int(i[4:]) % 7 == 0}
    submitted = submit(sandbox, project, str(write_subjects(project, ids)), "--command", COMMAND)
    run_id = submitted["run"]
    assert len(submitted["arrays"]) == 1

    first = wait_for_run(sandbox, project, run_id)
    expected = {i: (("FAILED", 3, 1) if i in failing else ("SUCCEEDED", 0, 1)) for i in ids}
    assert states(first) == expected
    assert {s["error"] for s in first["subjects"] if s["subject"] in failing} == {"last line on stderr: boom"}
    wait_until_squeue_forgets(sandbox, run_id)  # MinJobAge is 10 s in the sandbox
    assert states(status(sandbox, project, run_id)) == expected

    keys = s3_keys(sandbox, f"fifty/{run_id}/")
    assert {k.split("/")[2] for k in keys if k.endswith("/result.txt")} == set(ids)
    assert len([k for k in keys if "/.clustertools/records/" in k]) == 50

    log = sandbox.cli("logs", run_id, "sub-007", "--stderr", cwd=project)
    assert log.returncode == 0 and out(log) == "boom\n"
    plain = sandbox.cli("logs", run_id, "sub-008", cwd=project)
    assert plain.returncode == 0 and out(plain) == "out sub-008\n" and err(plain) == ""  # no stderr: nothing said
    both = sandbox.cli("logs", run_id, "sub-007", cwd=project)  # stdout for a pipe, stderr for the person
    assert both.returncode == 0 and out(both) == "out sub-007\n" and err(both) == "==> stderr of sub-007 <==\nboom\n"

    rerun = sandbox.cli("resubmit", run_id, "--failed", "--json", cwd=project)
    assert rerun.returncode == 0, err(rerun)
    assert sorted(json.loads(out(rerun))["subjects"]) == sorted(failing)
    final = wait_for_run(sandbox, project, run_id)
    assert states(final) == {i: ("SUCCEEDED", 0, 2 if i in failing else 1) for i in ids}
    nothing = sandbox.cli("resubmit", run_id, "--failed", cwd=project)
    assert nothing.returncode == 1 and "nothing to resubmit" in err(nothing)
    runs = json.loads(out(sandbox.cli("runs", "--json", cwd=project)))
    assert runs[-1]["run"] == run_id and runs[-1]["counts"]["SUCCEEDED"] == 50

    # The head node loses the run (a re-created cluster): status falls back to the records in S3.
    assert sandbox.cli("ssh", "--", "rm", "-rf", f".clustertools/runs/{run_id}").returncode == 0
    from_s3 = sandbox.cli("status", run_id, "--json", cwd=project)
    assert from_s3.returncode == 0 and "reading the run's records from S3 instead" in err(from_s3), err(from_s3)
    assert json.loads(out(from_s3))["source"] == "s3" and states(json.loads(out(from_s3))) == states(final)


HOSTILE_LISTS = {
    "semicolon": "sub-01\na;rm -rf ~\n",
    "subshell": "sub-01\n$(id)\n",
    "backticks": "`id`\n",
    "space": "sub 01\n",
    "duplicate": "sub-01\nsub-02\nsub-01\n",
    "empty": "",
    "only comments": "# nothing\n\n",
    "quote": "sub-01'\n",
    "dotdot": "..\n",
    "option": "-rf\n",
}


@pytest.mark.parametrize("name", HOSTILE_LISTS)
def test_hostile_subject_lists_are_refused_and_nothing_reaches_the_queue(sandbox, tmp_path, name):
    project = make_project(sandbox, tmp_path, "hostile")
    path = project / "bad.txt"
    path.write_text(HOSTILE_LISTS[name])
    result = sandbox.cli("submit", str(path), cwd=project)
    lines = err(result).strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: "), err(result)
    assert "Traceback" not in err(result)
    assert json.loads(out(sandbox.cli("runs", "--json", cwd=project))) == []
    queue = sandbox.cli("ssh", "--", "squeue", "-h", "--name=ct-hostile", "-o", "%i")
    assert out(queue).strip() == ""


def test_csv_columns_reach_the_task_as_environment_variables(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "sweep")
    (project / "sweep.csv").write_text('lr,note\n0.1,"a b; $(id)"\n0.2,plain\n')
    run_id = submit(
        sandbox, project, str(project / "sweep.csv"), "--command", 'printf "%s|%s|%s" "$SUBJECT" "$lr" "$note"'
    )["run"]
    done = wait_for_run(sandbox, project, run_id)
    assert [s["state"] for s in done["subjects"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert out(sandbox.cli("logs", run_id, "task-00001", cwd=project)) == "task-00001|0.1|a b; $(id)"


def test_dry_run_prints_the_scripts_and_sends_nothing(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "dry")
    result = sandbox.cli("submit", str(project / "subjects.txt"), "--dry-run", cwd=project)
    assert result.returncode == 0
    for part in ("==> array.sbatch <==", "==> wrapper.sh <==", "==> attempts/1/manifest <==", "sub-0004"):
        assert part in out(result)
    assert json.loads(out(sandbox.cli("runs", "--json", cwd=project))) == []


def test_cancel_some_subjects_then_the_whole_run(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "cancel")
    ids = ["c-1", "c-2", "c-3", "c-4"]
    run_id = submit(sandbox, project, str(write_subjects(project, ids)), "--command", "sleep 120", "--throttle", "1")[
        "run"
    ]
    deadline = time.monotonic() + 60
    while states(status(sandbox, project, run_id))["c-1"][0] != "RUNNING":
        assert time.monotonic() < deadline, "the first task never started"
        time.sleep(0.5)
    one = sandbox.cli("cancel", run_id, "c-3", cwd=project)
    assert one.returncode == 0 and "cancelled 1" in out(one), err(one)
    assert states(status(sandbox, project, run_id))["c-3"][0] == "CANCELLED"
    unknown = sandbox.cli("cancel", run_id, "nope", cwd=project)
    assert unknown.returncode == 1 and "not subjects of run" in err(unknown)
    everything = sandbox.cli("cancel", run_id, cwd=project)
    assert everything.returncode == 0 and "cancelled 3" in out(everything), err(everything)
    final = wait_for_run(sandbox, project, run_id, timeout=90)
    assert {s: v[0] for s, v in states(final).items()} == dict.fromkeys(ids, "CANCELLED")
    assert states(final)["c-1"][1] == 143  # the running one was told by SIGTERM, and said so


def test_resubmit_missing_reruns_subjects_without_success_or_output(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "missing")
    ids = ["m1", "m2", "m3", "m4", "m5"]
    command = 'case "$SUBJECT" in m3) ;; m5) exit 2 ;; *) echo ok > "$OUTPUT_DIR/out.txt" ;; esac'
    run_id = submit(sandbox, project, str(write_subjects(project, ids)), "--command", command)["run"]
    first = wait_for_run(sandbox, project, run_id)
    assert {s: v[0] for s, v in states(first).items()} == {
        "m1": "SUCCEEDED",
        "m2": "SUCCEEDED",
        "m3": "SUCCEEDED",
        "m4": "SUCCEEDED",
        "m5": "FAILED",
    }
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    client.delete_object(Bucket="clustertools-sandbox", Key=f"missing/{run_id}/m1/out.txt")  # an output lost
    check = sandbox.cli("results", "check", run_id, "--json", cwd=project)
    assert check.returncode == 1 and sorted(json.loads(out(check))["missing"]) == ["m1", "m3", "m5"]
    plan = sandbox.cli("resubmit", run_id, "--missing", "--dry-run", "--json", cwd=project)
    assert plan.returncode == 0, err(plan)
    assert sorted(json.loads(out(plan))["subjects"]) == ["m1", "m3", "m5"]
    failed_only = sandbox.cli("resubmit", run_id, "--failed", "--dry-run", "--json", cwd=project)
    assert json.loads(out(failed_only))["subjects"] == ["m5"]


def test_a_run_blocked_by_busy_nodes_says_pending_resources(sandbox, tmp_path):
    """Both nodes taken whole by one run: the next run's task waits, and status says why, as Slurm does."""
    project = make_project(sandbox, tmp_path, "busy")
    filler = submit(
        sandbox,
        project,
        str(write_subjects(project, ["f-1", "f-2"], "fill.txt")),
        "--command",
        "sleep 60",
        "--cpus",
        "32",
    )["run"]
    blocked = submit(
        sandbox, project, str(write_subjects(project, ["b-1"], "blocked.txt")), "--command", "true", "--cpus", "32"
    )["run"]
    try:
        deadline = time.monotonic() + 60
        while True:
            current = status(sandbox, project, blocked)
            if current["subjects"][0]["reason"] == "Resources":
                break
            assert time.monotonic() < deadline, current
            time.sleep(1)
        assert current["waiting"] == {"Resources": 1} and current["counts"]["PENDING"] == 1
        text = sandbox.cli("status", blocked, cwd=project)
        assert "pending (Resources)" in out(text) and "pending 1 (Resources 1)" in out(text), out(text)
    finally:
        for run in (filler, blocked):
            assert sandbox.cli("cancel", run, cwd=project).returncode == 0


def test_status_watch_exit_code_says_whether_every_subject_succeeded(sandbox, tmp_path):
    """A script may chain on `status --watch`: 0 only when all succeeded; --no-fail for the old behaviour."""
    project = make_project(sandbox, tmp_path, "exits")
    failing = submit(
        sandbox,
        project,
        str(write_subjects(project, ["ok-1", "bad-1"], "mixed.txt")),
        "--command",
        'case "$SUBJECT" in bad-*) exit 3;; esac',
    )["run"]
    watched = sandbox.cli("status", failing, "--watch", "--interval", "0.5", cwd=project, timeout=180)
    assert watched.returncode == 1 and "failed 1" in out(watched), out(watched) + err(watched)
    as_json = sandbox.cli("status", failing, "--watch", "--json", cwd=project)
    assert as_json.returncode == 1 and json.loads(out(as_json))["counts"]["FAILED"] == 1
    assert sandbox.cli("status", failing, "--watch", "--no-fail", cwd=project).returncode == 0
    assert sandbox.cli("status", failing, cwd=project).returncode == 0  # a snapshot is not a verdict
    fine = submit(sandbox, project, str(write_subjects(project, ["ok-2"], "fine.txt")), "--command", "true")["run"]
    assert sandbox.cli("status", fine, "--watch", "--interval", "0.5", cwd=project, timeout=180).returncode == 0


def test_a_task_killed_at_its_time_limit_is_timeout_and_reruns_with_more_time(sandbox, tmp_path):
    """Slurm ends the task at --time 1 (one minute; it checks every 30 s): TIMEOUT, not CANCELLED. Resubmitted
    with --time 00:20:00 (its own array script), the same subject succeeds; the other one never reruns."""
    project = make_project(sandbox, tmp_path, "slow")
    command = '[ "$SUBJECT" = slow-2 ] && [ "$ATTEMPT" = 1 ] && sleep 600; echo done'
    run_id = submit(
        sandbox, project, str(write_subjects(project, ["slow-1", "slow-2"])), "--command", command, "--time", "1"
    )["run"]
    first = wait_for_run(sandbox, project, run_id, timeout=240)
    assert states(first) == {"slow-1": ("SUCCEEDED", 0, 1), "slow-2": ("TIMEOUT", 143, 1)}, first
    timed_out = next(s for s in first["subjects"] if s["subject"] == "slow-2")
    assert "killed at its time limit (--time 1)" in timed_out["error"], timed_out
    again = sandbox.cli(
        "resubmit", run_id, "--failed", "--state", "TIMEOUT", "--time", "00:20:00", "--json", cwd=project
    )
    assert again.returncode == 0 and json.loads(out(again))["subjects"] == ["slow-2"], err(again)
    limit = sandbox.cli("ssh", "--", "cat", f".clustertools/runs/{run_id}/attempts/2/array.sbatch")
    assert "#SBATCH --time=00:20:00\n" in out(limit), out(limit) + err(limit)
    final = wait_for_run(sandbox, project, run_id)
    assert states(final) == {"slow-1": ("SUCCEEDED", 0, 1), "slow-2": ("SUCCEEDED", 0, 2)}, final


def test_the_projects_code_is_each_tasks_working_directory(sandbox, tmp_path):
    """job.workdir: code/ with `command: bash job.sh`, as a user writes it on their own machine; ten subjects."""
    project = make_project(sandbox, tmp_path, "code")
    (project / "code" / "lib").mkdir(parents=True)
    (project / "code" / "job.sh").write_text(
        'source lib/settings.sh\necho "$SUBJECT $GREETING" > "$OUTPUT_DIR/out.txt"\n'
    )
    (project / "code" / "lib" / "settings.sh").write_text("GREETING=hello-from-code\n")
    config = project / "clustertools.yaml"
    config.write_text(re.sub(r"(?m)^  command: .*$", "  command: bash job.sh\n  workdir: code/", config.read_text()))
    subjects = [f"w-{i}" for i in range(1, 11)]
    run_id = submit(sandbox, project, str(write_subjects(project, subjects)))["run"]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 10, [(s["subject"], s["state"], s["error"]) for s in final["subjects"]]
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert (tmp_path / "got" / "w-7" / "out.txt").read_text() == "w-7 hello-from-code\n"
    # changed code is another run, not a duplicate of this one
    (project / "code" / "lib" / "settings.sh").write_text("GREETING=changed\n")
    assert submit(sandbox, project, str(project / "subjects.txt"))["run"] != run_id


def test_cancelling_fifty_running_tasks_leaves_each_cancelled_with_its_record_and_no_scratch(sandbox, tmp_path):
    """scancel signals every task at once (and again: the batch step and its children); each wrapper still
    writes its final record, uploads what it has, and removes its scratch dir."""
    project = make_project(sandbox, tmp_path, "halt")
    ids = [f"h-{i:02d}" for i in range(50)]
    run_id = submit(sandbox, project, str(write_subjects(project, ids)), "--command", "sleep 300", "--mem", "50M")[
        "run"
    ]
    deadline = time.monotonic() + 120
    while status(sandbox, project, run_id)["counts"]["RUNNING"] < 50:
        assert time.monotonic() < deadline, status(sandbox, project, run_id)["counts"]
        time.sleep(1)
    cancelled = sandbox.cli("cancel", run_id, cwd=project)
    assert cancelled.returncode == 0, err(cancelled)
    final = wait_for_run(sandbox, project, run_id, timeout=120)
    assert final["counts"]["CANCELLED"] == 50, [
        (s["subject"], s["state"], s["error"]) for s in final["subjects"] if s["state"] != "CANCELLED"
    ]
    assert {s["exit_code"] for s in final["subjects"]} == {143}
    assert {s["error"] for s in final["subjects"]} == {"terminated by Slurm (scancel)"}
    # a task's scratch dir is /tmp/clustertools.XXXXXX, its staged outputs in stage/<subject>
    deadline = time.monotonic() + 30
    while list(Path("/tmp").glob("clustertools.*/stage/h-*")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(Path("/tmp").glob("clustertools.*/stage/h-*")), "a task's scratch dir was left behind"


def test_logs_follow_ends_when_the_task_ends(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "follow")
    command = 'for i in 1 2 3 4; do echo "tick-$i"; sleep 1; done'
    run_id = submit(sandbox, project, str(write_subjects(project, ["f-1"])), "--command", command)["run"]
    deadline = time.monotonic() + 60
    while states(status(sandbox, project, run_id))["f-1"][0] == "PENDING":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.5)
    followed = sandbox.cli("logs", run_id, "f-1", "--follow", cwd=project, timeout=90)
    assert followed.returncode == 0, err(followed)
    assert out(followed) == "tick-1\ntick-2\ntick-3\ntick-4\n"
    assert "f-1 (attempt 1) ended: SUCCEEDED" in err(followed)


def test_a_subject_list_from_where_the_data_is(sandbox, tmp_path):
    """`clustertools subjects s3://.../`: the subject prefixes (BIDS sub-* or plain), a subjects file submit reads."""
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    for key in (
        "bids/sub-02/anat/T1w.nii.gz",
        "bids/sub-01/anat/T1w.nii.gz",
        "bids/sub-10/func/bold.nii.gz",
        "bids/derivatives/x/y",
        "bids/participants.tsv",
        "bids/odd name/z",
    ):
        client.put_object(Bucket="clustertools-sandbox", Key=key, Body=b"x")
    project = make_project(sandbox, tmp_path, "bids")
    listed = sandbox.cli(
        "subjects", "s3://clustertools-sandbox/bids/", "--pattern", "sub-*", "-o", "found.txt", cwd=project
    )
    assert listed.returncode == 0, err(listed)
    assert (project / "found.txt").read_text() == (
        "# 3 subject(s) under s3://clustertools-sandbox/bids/\nsub-01\nsub-02\nsub-10\n"
    )
    assert "skipped 2 name(s)" in err(listed) and "derivatives" in err(listed)
    shown = json.loads(out(sandbox.cli("subjects", "s3://clustertools-sandbox/bids", "--json", cwd=project)))
    assert shown["subjects"] == ["derivatives", "sub-01", "sub-02", "sub-10"]
    dry = sandbox.cli("submit", str(project / "found.txt"), "--dry-run", cwd=project)
    assert dry.returncode == 0 and "sub-10" in out(dry), err(dry)
    none = sandbox.cli("subjects", "s3://clustertools-sandbox/bids/", "--pattern", "ses-*", cwd=project)
    assert none.returncode == 1 and "no prefix under it matches 'ses-*'" in err(none)


def test_each_subject_stages_only_what_it_needs_from_its_own_input_url(sandbox, tmp_path):
    """A column input_url (a prefix, or one object) and storage.input_include: only anat/ is staged."""
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    for key in (
        "abcd-raw/NDAR_1/anat/T1w.nii.gz",
        "abcd-raw/NDAR_1/dwi/dwi.nii.gz",
        "abcd-raw/NDAR_1/anat/T2w.nii.gz",
        "abcd-raw/other/NDAR_2_T1w.nii.gz",
    ):
        client.put_object(Bucket="clustertools-sandbox", Key=key, Body=b"x")
    project = make_project(sandbox, tmp_path, "staged")
    config = project / "clustertools.yaml"
    config.write_text(config.read_text().replace("storage:\n", "storage:\n  input_include: ['anat/*T1w*']\n", 1))
    (project / "subjects.csv").write_text(
        "subject,input_url\nsub-1,s3://clustertools-sandbox/abcd-raw/NDAR_1/\n"
        "sub-2,s3://clustertools-sandbox/abcd-raw/other/NDAR_2_T1w.nii.gz\n"
    )
    command = 'cd "$INPUT_DIR" && find . -type f | sort > "$OUTPUT_DIR/staged.txt"'
    run_id = submit(sandbox, project, str(project / "subjects.csv"), "--command", command)["run"]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 2, [(s["subject"], s["error"]) for s in final["subjects"]]
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert (tmp_path / "got" / "sub-1" / "staged.txt").read_text() == "./anat/T1w.nii.gz\n"
    assert (tmp_path / "got" / "sub-2" / "staged.txt").read_text() == "./NDAR_2_T1w.nii.gz\n"


def test_collect_gathers_files_matched_by_a_pattern_and_plain_values(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "gather")
    command = (
        'mkdir -p "$OUTPUT_DIR/anat" "$OUTPUT_DIR/func" && '
        'echo "{\\"snr\\": 1}" > "$OUTPUT_DIR/anat/${SUBJECT}_desc-summary.json" && '
        'echo "{\\"snr\\": 2}" > "$OUTPUT_DIR/func/${SUBJECT}_desc-summary.json" && echo 0.5 > "$OUTPUT_DIR/acc.json"'
    )
    run_id = submit(sandbox, project, str(write_subjects(project, ["sub-a", "sub-b"])), "--command", command)["run"]
    assert wait_for_run(sandbox, project, run_id)["counts"]["SUCCEEDED"] == 2
    matched = sandbox.cli(
        "results", "collect", run_id, "--file", "*_desc-summary.json", "--format", "json", cwd=project
    )
    assert matched.returncode == 0, err(matched)
    assert json.loads(out(matched)) == [
        {"subject": "sub-a", "file": "anat/sub-a_desc-summary.json", "snr": 1},
        {"subject": "sub-a", "file": "func/sub-a_desc-summary.json", "snr": 2},
        {"subject": "sub-b", "file": "anat/sub-b_desc-summary.json", "snr": 1},
        {"subject": "sub-b", "file": "func/sub-b_desc-summary.json", "snr": 2},
    ]
    values = sandbox.cli("results", "collect", run_id, "--file", "acc.json", "--format", "json", cwd=project)
    assert json.loads(out(values)) == [{"subject": "sub-a", "value": 0.5}, {"subject": "sub-b", "value": 0.5}]


def test_shared_inputs_reach_every_task_as_shared_dir(sandbox, tmp_path):
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    client.put_object(Bucket="clustertools-sandbox", Key="models/v3/model.pt", Body=b"weights-v3")
    client.put_object(Bucket="clustertools-sandbox", Key="models/atlas/labels.txt", Body=b"labels")
    project = make_project(sandbox, tmp_path, "shared")
    config = project / "clustertools.yaml"
    config.write_text(
        config.read_text().replace(
            "storage:\n",
            "storage:\n  shared_inputs: [s3://clustertools-sandbox/"
            "models/v3/model.pt, s3://clustertools-sandbox/models/atlas/]\n",
            1,
        )
    )
    command = 'cat "$SHARED_DIR/model.pt" "$SHARED_DIR/atlas/labels.txt" > "$OUTPUT_DIR/read.txt"'
    run_id = submit(sandbox, project, str(write_subjects(project, [f"m-{i}" for i in range(4)])), "--command", command)[
        "run"
    ]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 4, [(s["subject"], s["error"]) for s in final["subjects"]]
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert {(tmp_path / "got" / f"m-{i}" / "read.txt").read_text() for i in range(4)} == {"weights-v3labels"}
