"""Containers for real on the sandbox: its registry serves sandbox/tools (built here from busybox), its nodes run
podman rootless as the login user, and the run wrapper runs each task in the image, pulled once per cluster.

The registry's access log (log/registry.out) is the proof of "once": a pull asks for the tag's manifest, and
so each `GET .../manifests/<tag>` line is one pull. The shared sandbox's tests use tag 1.0 (pulled by the
first task that needs it) and 1.1 (a changed tag); the bootstrap's own pull runs on a sandbox of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, states, submit, wait_for_run, write_subjects


def image_of(box, tag: str) -> dict:
    return next(i for i in box.status["images"] if i["reference"].endswith(f"/sandbox/tools:{tag}"))


def pulls(box, tag: str) -> int:
    log = (box.state / "sandbox" / "log" / "registry.out").read_text()
    return len(re.findall(rf'"GET /v2/sandbox/tools/manifests/{re.escape(tag)} HTTP', log))


def container_project(box, tmp_path: Path, name: str, tag: str, *, inputs: str | None = None) -> Path:
    project = make_project(box, tmp_path, name)
    config = project / "clustertools.yaml"
    text = config.read_text().replace(
        "  # container: docker://ghcr.io/example/pipeline:1.0", f"  container: {image_of(box, tag)['reference']}"
    )
    if inputs:
        text = re.sub(r"(?m)^  # input: .*$", f"  input: s3://clustertools-sandbox/{inputs}", text)
    config.write_text(text)
    return project


def test_twenty_subjects_run_in_the_image_pulled_once_with_its_digest_in_every_record(sandbox, tmp_path):
    """Seed 000/001's shape: a packaged tool reads each subject's staged input and writes a result; the input
    is read-only in the container; the image's working dir is kept."""
    project = container_project(sandbox, tmp_path, "seg", "1.0", inputs="seg-inputs")
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    subjects = [f"sub-{i:02d}" for i in range(1, 21)]
    for subject in subjects:
        client.put_object(Bucket="clustertools-sandbox", Key=f"seg-inputs/{subject}/T1w.nii.gz", Body=subject.encode())
    command = (
        'tool segment "$INPUT_DIR" "$OUTPUT_DIR"; pwd > "$OUTPUT_DIR/where.txt"; '
        'touch "$INPUT_DIR/new" 2>/dev/null && echo "input writable" >&2; '
        'grep PRETTY_NAME /etc/os-release > "$OUTPUT_DIR/os.txt"'
    )
    run_id = submit(sandbox, project, str(write_subjects(project, subjects)), "--command", command)["run"]
    final = wait_for_run(sandbox, project, run_id, timeout=300)
    assert final["counts"]["SUCCEEDED"] == 20, [s for s in final["subjects"] if s["state"] != "SUCCEEDED"]
    image = image_of(sandbox, "1.0")
    ran = image["reference"].removeprefix("docker://") + "@" + image["digest"]
    assert {s["image"] for s in final["subjects"]} == {ran}
    assert pulls(sandbox, "1.0") == 1, "one pull for the cluster, not one per task"
    listed = json.loads(out(sandbox.cli("results", "ls", run_id, "--json", cwd=project)))
    keys = {o["key"] for o in listed}
    assert {f"{s}/segmentation.txt" for s in subjects} <= keys, sorted(keys)[:5]
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert (tmp_path / "got" / "sub-07" / "segmentation.txt").read_text() == "segmented: T1w.nii.gz\n"
    assert (tmp_path / "got" / "sub-07" / "where.txt").read_text() == "/work\n"
    assert "sandbox/tools:1.0 (busybox)" in (tmp_path / "got" / "sub-07" / "os.txt").read_text()
    assert "input writable" not in out(sandbox.cli("logs", run_id, "sub-07", "--stderr", cwd=project))


def test_a_container_that_exits_3_fails_those_subjects_and_resubmit_reruns_only_them(sandbox, tmp_path):
    project = container_project(sandbox, tmp_path, "exits", "1.0")
    command = (
        'case "$SUBJECT" in c-2|c-4) [ "$ATTEMPT" = 1 ] && exec tool fail 3;; esac; tool hello > "$OUTPUT_DIR/out.txt"'
    )
    subjects = str(write_subjects(project, ["c-1", "c-2", "c-3", "c-4"]))
    run_id = submit(sandbox, project, subjects, "--command", command)["run"]
    first = wait_for_run(sandbox, project, run_id)
    assert states(first) == {
        "c-1": ("SUCCEEDED", 0, 1),
        "c-2": ("FAILED", 3, 1),
        "c-3": ("SUCCEEDED", 0, 1),
        "c-4": ("FAILED", 3, 1),
    }
    failed = next(s for s in first["subjects"] if s["subject"] == "c-2")
    assert failed["error"] == "last line on stderr: tool: failing with 3 as asked", failed
    again = sandbox.cli("resubmit", run_id, "--failed", "--json", cwd=project)
    assert again.returncode == 0, err(again)
    final = wait_for_run(sandbox, project, run_id)
    assert states(final) == {
        "c-1": ("SUCCEEDED", 0, 1),
        "c-2": ("SUCCEEDED", 0, 2),
        "c-3": ("SUCCEEDED", 0, 1),
        "c-4": ("SUCCEEDED", 0, 2),
    }
    assert pulls(sandbox, "1.0") <= 1


def test_parameters_from_columns_metrics_gathered_and_a_changed_tag_pulled_again(sandbox, tmp_path):
    """Seed 002/004's shape: the image reads its parameters from environment variables (the CSV's columns) and
    writes metrics.json, which `results collect` gathers; its own ENV (TOOL_VERSION) stays. Tag 1.1 is another
    image: pulled once more, and each record names its digest."""
    project = container_project(sandbox, tmp_path, "sweep", "1.1")
    (project / "sweep.csv").write_text("subject,LR,EPOCHS\nlr-a,0.1,3\nlr-b,0.01,5\n")
    command = (
        'printf \'{"lr": %s, "epochs": %s, "tool": "%s"}\' "$LR" "$EPOCHS" "$TOOL_VERSION" > "$OUTPUT_DIR/metrics.json"'
    )
    run_id = submit(sandbox, project, str(project / "sweep.csv"), "--command", command)["run"]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 2, final
    image = image_of(sandbox, "1.1")
    assert image["digest"] != image_of(sandbox, "1.0")["digest"]
    assert {s["image"].rsplit("@", 1)[1] for s in final["subjects"]} == {image["digest"]}
    assert pulls(sandbox, "1.1") == 1
    collected = sandbox.cli("results", "collect", run_id, "--file", "metrics.json", "--format", "json", cwd=project)
    assert collected.returncode == 0, err(collected)
    rows = sorted(json.loads(out(collected)), key=lambda row: row["subject"])
    assert rows == [
        {"subject": "lr-a", "lr": 0.1, "epochs": 3, "tool": "1.1"},
        {"subject": "lr-b", "lr": 0.01, "epochs": 5, "tool": "1.1"},
    ], rows


def test_debug_a_subject_lands_in_its_container(sandbox, tmp_path):
    project = container_project(sandbox, tmp_path, "dbgc", "1.0")
    run_id = submit(sandbox, project, str(write_subjects(project, ["d-1"])), "--command", "exit 4")["run"]
    assert states(wait_for_run(sandbox, project, run_id))["d-1"] == ("FAILED", 4, 1)
    piped = sandbox.cli(
        "debug",
        "--run",
        run_id,
        "d-1",
        cwd=project,
        input=b'grep PRETTY_NAME /etc/os-release; echo "S=$SUBJECT"; exit 3\n',
    )
    assert piped.returncode == 3, err(piped)
    assert 'PRETTY_NAME="clustertools sandbox image sandbox/tools:1.0 (busybox)"\nS=d-1\n' in out(piped), out(piped)


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("state-containers"), "--static-nodes", "1", "--nodes", "1")
    yield box
    stop_sandbox(box)


def test_the_bootstrap_pulls_the_image_once_for_the_cluster_and_tasks_use_that_copy(bootstrapped, tmp_path):
    tmp_path.chmod(0o1777)
    project = container_project(bootstrapped, tmp_path, "boot", "1.0")
    done = bootstrapped.cli("sandbox", "bootstrap", cwd=project, timeout=300)
    assert done.returncode == 0, err(done) + out(done)
    assert "runtime=podman" in out(done) and pulls(bootstrapped, "1.0") == 1
    shared_env = (bootstrapped.state / "sandbox" / "node" / "home" / "clustertools" / "bootstrap.env").read_text()
    image = image_of(bootstrapped, "1.0")
    assert f"CT_IMAGE_DIGEST={image['digest']}\n" in shared_env, shared_env
    run_id = submit(
        bootstrapped, project, str(write_subjects(project, ["b-1", "b-2", "b-3"])), "--command", "tool hello"
    )["run"]
    final = wait_for_run(bootstrapped, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 3, final
    assert {s["image"] for s in final["subjects"]} == {
        image["reference"].removeprefix("docker://") + "@" + image["digest"]
    }
    assert pulls(bootstrapped, "1.0") == 1, "the tasks ran from the bootstrap's copy"
    home = bootstrapped.state / "sandbox" / "node" / "home" / bootstrapped.record.user
    assert not (home / ".clustertools" / "images").exists()


def test_the_images_own_entrypoint_runs_with_container_args(sandbox, tmp_path):
    """job.container_args: the image's entrypoint (`tool`) and working dir, with ${NAME}s replaced per task and
    nothing else expanded; a ${NAME} the run does not have is refused before anything is sent."""
    project = container_project(sandbox, tmp_path, "entry", "1.0", inputs="entry-inputs")
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=sandbox.status["s3_endpoint_url"], sandbox=True))
    for subject in ("e-1", "e-2"):
        client.put_object(Bucket="clustertools-sandbox", Key=f"entry-inputs/{subject}/scan $1.nii", Body=b"x")
    config = project / "clustertools.yaml"
    text = re.sub(r"(?m)^  command: .*$", "", config.read_text())
    args = '["segment", "${INPUT_DIR}", "${OUTPUT_DIR}/seg-${SUBJECT}"]'
    # On AWS this project's cluster (Amazon Linux 2023) would run it with docker: enroot runs no entrypoint.
    config.write_text(
        text.replace("  cpus: 1\n", f"  container_args: {args}\n  cpus: 1\n", 1)
        + "bootstrap:\n  container_runtime: docker\n"
    )
    subjects = str(write_subjects(project, ["e-1", "e-2"]))
    run_id = submit(sandbox, project, subjects)["run"]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 2, final
    logged = out(sandbox.cli("logs", run_id, "e-2", cwd=project))
    assert "tool 1.0: segmented 1 file(s) into /tmp/" in logged and "/e-2/seg-e-2" in logged, logged
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert (tmp_path / "got" / "e-2" / "seg-e-2" / "segmentation.txt").read_text() == "segmented: scan $1.nii\n"

    config.write_text(config.read_text().replace(args, '["segment", "${T1_PATH}"]'))
    refused = sandbox.cli("submit", subjects, "--new-run", cwd=project)
    assert refused.returncode == 1 and len(err(refused).strip().splitlines()) == 1, err(refused)
    assert "job.container_args name ${T1_PATH}, which this run does not have" in err(refused)
