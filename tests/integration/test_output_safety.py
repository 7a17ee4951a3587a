"""Outputs are never lost to S3 (issue 11, item 7) and CSV columns are refused case-insensitively (item 3),
on the real sandbox: a missing output bucket stops submit before anything is queued; a bucket that goes
away while tasks compute costs no recomputation: the tasks keep their outputs on the head node and
`results push` uploads them once the bucket is back."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, states, status, wait_for_run, write_subjects


def s3(sandbox):
    return make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))


def set_output(project, url: str) -> None:
    path = project / "clustertools.yaml"
    path.write_text(re.sub(r"(?m)^  output: .*$", f"  output: {url}", path.read_text(), count=1))


@contextlib.contextmanager
def login_environment(sandbox, name: str, value: str):
    """``name=value`` in the login user's environment (~/.bash_profile, which every command clustertools sends
    reads: a login shell), so the tasks sbatch queues meanwhile get it too; the file as it was afterwards."""
    line = f"export {name}={shlex.quote(value)}  # clustertools test"
    added = sandbox.cli(
        "ssh",
        "--",
        "sh",
        "-c",
        f"cp -p ~/.bash_profile ~/.bash_profile.saved && echo {shlex.quote(line)} >> ~/.bash_profile",
    )
    assert added.returncode == 0, err(added)
    try:
        yield
    finally:
        restored = sandbox.cli("ssh", "--", "sh", "-c", "mv -f ~/.bash_profile.saved ~/.bash_profile")
        assert restored.returncode == 0, err(restored)


def assert_nothing_queued(sandbox, name: str) -> None:
    queue = sandbox.cli("ssh", "--", "squeue", "-h", "-t", "all", "-o", "%j")
    assert queue.returncode == 0 and not [j for j in out(queue).split() if j.startswith(f"ct-{name}")], out(queue)


def test_a_missing_output_bucket_stops_submit_with_one_line_before_anything_is_queued(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "nobucket")
    set_output(project, "s3://ct-no-such-bucket/out")
    result = sandbox.cli("submit", str(write_subjects(project, ["s1", "s2"])), cwd=project)
    lines = err(result).strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, err(result)
    assert lines[0].startswith("Error: the output location s3://ct-no-such-bucket/out/nobucket-")
    assert "is not writable from the head node" in lines[0] and "NoSuchBucket" in lines[0], lines[0]
    assert_nothing_queued(sandbox, "nobucket")


def test_reserved_column_names_are_refused_in_any_case(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "cols")
    for header in ("path", "pythonpath", "PYTHONPATH"):
        (project / "cols.csv").write_text(f"subject,{header}\ns1,/tmp/evil\n")
        result = sandbox.cli("submit", str(project / "cols.csv"), cwd=project)
        assert (
            result.returncode == 1
            and f"reserved column name (compared case-insensitively): line 1 '{header}'" in err(result)
        ), err(result)
    assert_nothing_queued(sandbox, "cols")


def test_an_s3_outage_during_the_run_keeps_the_outputs_and_results_push_finishes_without_recomputing(sandbox, tmp_path):
    bucket = "ct-outage"
    client = s3(sandbox)
    client.create_bucket(Bucket=bucket)
    project = make_project(sandbox, tmp_path, "outage")
    set_output(project, f"s3://{bucket}/study")
    release, ran = tmp_path / "release", tmp_path / "ran"
    command = (
        f"while [ ! -e {shlex.quote(str(release))} ]; do sleep 0.2; done; "
        f'echo "$SUBJECT" >> {shlex.quote(str(ran))}; echo "done $SUBJECT" > "$OUTPUT_DIR/out.txt"'
    )
    # The wrapper's upload retries (4 tries, 5 + 15 + 45 s apart) made 1 + 2 + 3 s apart for these tasks: the same
    # path, a minute sooner. tests/unit/test_wrapper_upload_marker.py runs the wrapper with the real delays' order.
    with login_environment(sandbox, "CLUSTERTOOLS_UPLOAD_RETRY_DELAYS", "1 2 3"):
        submitted = sandbox.cli(
            "submit", str(write_subjects(project, ["o1", "o2"])), "--command", command, "--json", cwd=project
        )
    assert submitted.returncode == 0, err(submitted)
    run_id = json.loads(out(submitted))["run"]
    deadline = time.monotonic() + 60
    while {v[0] for v in states(status(sandbox, project, run_id)).values()} != {"RUNNING"}:
        assert time.monotonic() < deadline, "the tasks never started"
        time.sleep(0.5)

    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0, "submit's probe was deleted"
    client.delete_bucket(Bucket=bucket)  # the outage: every upload now fails
    release.touch()
    failed = wait_for_run(sandbox, project, run_id, timeout=240)  # 4 tries each: 1 + 2 + 3 s of waiting
    for subject in failed["subjects"]:
        kept = f"/.clustertools/runs/{run_id}/unsent/{subject['subject']}.1"
        assert (subject["state"], subject["exit_code"]) == ("FAILED", 96)
        assert subject["kept"].endswith(kept) and f"outputs kept at {subject['kept']}" in subject["error"]

    rerun = sandbox.cli("resubmit", run_id, "--failed", cwd=project)
    assert rerun.returncode == 1 and f"clustertools results push {run_id}" in err(rerun), err(rerun)
    early = sandbox.cli("results", "push", run_id, cwd=project)  # S3 still down: nothing lost, said so
    assert early.returncode == 1 and "not pushed" in err(early)

    client.create_bucket(Bucket=bucket)  # S3 is back
    pushed = sandbox.cli("results", "push", run_id, "--json", cwd=project)
    assert pushed.returncode == 0, err(pushed)
    assert [(s["subject"], s["state"]) for s in json.loads(out(pushed))["pushed"]] == [
        ("o1", "SUCCEEDED"),
        ("o2", "SUCCEEDED"),
    ]
    assert states(status(sandbox, project, run_id)) == {"o1": ("SUCCEEDED", 0, 1), "o2": ("SUCCEEDED", 0, 1)}
    assert sorted(ran.read_text().split()) == ["o1", "o2"], "each subject computed once"
    body = client.get_object(Bucket=bucket, Key=f"study/{run_id}/o1/out.txt")["Body"].read()
    assert body == b"done o1\n"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"study/{run_id}/.clustertools/records/o2.1.json" in keys
    runs = json.loads(out(sandbox.cli("runs", "--json", cwd=project)))
    assert runs[-1]["run"] == run_id and runs[-1]["attempts"] == 1
