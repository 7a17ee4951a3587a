"""The REAL node bootstrap (bootstrap/on-node-configured.sh) run on the sandbox's node by
`clustertools sandbox bootstrap`, then `clustertools triage -c sandbox`.

This machine (Debian 12) is the node: the script is uploaded to the sandbox's S3 endpoint with bootstrap/,
fetched back by the node with `aws s3 cp` and run over SSH with the project's Args, as ParallelCluster runs
it on a head node. What cannot be had here is replaced by a stand-in this test builds:
- the Miniforge installer (no internet): a small shell script accepting `-b [-u] -p PREFIX` that creates
  PREFIX/bin/conda, itself a stand-in that records its arguments and creates the environment directory.
  It is uploaded to the sandbox's S3 endpoint and checked by its real sha256;
- apptainer (not installable here): the runs use `--runtime none`, so no image is pulled; pulling is
  covered with a stand-in apptainer by tests/unit/test_bootstrap.py.
The sandbox is this module's own (its step markers and shared dir change), stopped at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.conftest import start_sandbox, stop_sandbox
from tests.helpers import err, out

pytestmark = pytest.mark.sandbox

INSTALLER = """#!/bin/sh
# Stand-in for the Miniforge installer (the real one cannot be fetched here).
prefix=""
while [ $# -gt 0 ]; do case $1 in -p) prefix=$2; shift 2;; *) shift;; esac; done
mkdir -p "$prefix/bin"
cat > "$prefix/bin/conda" <<'EOF'
#!/bin/sh
# Stand-in conda: records its arguments next to itself, makes the environment directory.
printf '%s\\n' "conda $*" >> "$(dirname "$0")/../calls.log"
while [ $# -gt 0 ]; do case $1 in -p) mkdir -p "$2/conda-meta"; shift 2;; *) shift;; esac; done
EOF
chmod +x "$prefix/bin/conda"
echo "installed into $prefix"
"""
SHA = hashlib.sha256(INSTALLER.encode()).hexdigest()
MIRROR = "s3://clustertools-sandbox/mirror/Miniforge3-Linux-x86_64.sh"


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    box = start_sandbox(tmp_path_factory.mktemp("state-bootstrap"), "--static-nodes", "1")
    s3 = make_s3_client(S3Target(region="us-east-1", endpoint_url=box.status["s3_endpoint_url"], sandbox=True))
    s3.put_object(Bucket="clustertools-sandbox", Key=MIRROR.split("/", 3)[3], Body=INSTALLER.encode())
    yield box
    stop_sandbox(box)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("study")
    (directory / "envs").mkdir()
    (directory / "envs" / "study.yml").write_text("name: study\ndependencies:\n  - python=3.11\n  - numpy\n")
    (directory / "clustertools.yaml").write_text(f"""\
name: study
cluster: sandbox
storage:
  output: s3://clustertools-sandbox/study
bootstrap:
  miniforge_url: {MIRROR}
  miniforge_sha256: {SHA}
  env_file: envs/study.yml
""")
    return directory


def shared(box) -> Path:
    return box.state / "sandbox" / "node" / "home" / "clustertools"


def test_1_the_real_script_runs_on_the_sandbox_node_with_the_projects_settings(box, project):
    result = box.cli("sandbox", "bootstrap", cwd=project)
    stdout, stderr = out(result), err(result)
    assert result.returncode == 0, stdout + stderr
    # The Args a rendered ParallelCluster config gives, and the installer from the sandbox's S3 endpoint.
    assert re.search(r"bootstrap start: project=study cluster=sandbox role=head os=debian 12 runtime=none", stdout)
    assert f"sha256 verified: {SHA}" in stdout
    for step in ("miniforge", "conda-env", "node-env"):
        assert f"step {step}: done" in stdout
    assert "bootstrap finished OK (3 step(s) run)" in stdout
    assert "uploaded s3://clustertools-sandbox/clustertools/sandbox/bootstrap/on-node-configured.sh" in stderr
    assert "uploaded s3://clustertools-sandbox/clustertools/sandbox/bootstrap/env/study.yml" in stderr
    # Everything it made is inside the sandbox's directory.
    assert (shared(box) / "miniforge3" / "bin" / "conda").is_file()
    solved = env_dir((project / "envs" / "study.yml").read_text())  # envs/study-SHA12: the file's own directory
    assert (shared(box) / "envs" / Path(solved).name / "conda-meta").is_dir()
    calls = (shared(box) / "miniforge3" / "calls.log").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith(f"conda env create -p {solved} -f ")
    env = (shared(box) / "bootstrap.env").read_text()
    assert f"CT_CONDA_ENV={solved}\n" in env and "CT_RUNTIME=none" in env
    markers = box.state / "sandbox" / "bootstrap" / "state" / "steps"
    assert sorted(p.name for p in markers.iterdir()) == ["conda-env.done", "miniforge.done", "node-env.done"]
    log = (box.state / "sandbox" / "log" / "clustertools-bootstrap.log").read_text()
    assert "bootstrap finished OK" in log and "sha256 verified" in log
    assert "bootstrap start" in (box.state / "sandbox" / "log" / "cloud-init-output.log").read_text()


def test_2_a_second_run_with_the_same_inputs_is_a_no_op_and_says_so(box, project):
    result = box.cli("sandbox", "bootstrap", cwd=project)
    stdout, stderr = out(result), err(result)
    assert result.returncode == 0, stdout + stderr
    for step in ("miniforge", "conda-env", "node-env"):
        assert f"step {step}: already done (inputs unchanged)" in stdout
    assert not re.search(r"step \S+: start", stdout)
    assert "bootstrap finished OK: nothing to do (every step already done)" in stdout
    assert "nothing to do, every step was already done (no-op)" in stderr
    assert "unchanged s3://clustertools-sandbox/clustertools/sandbox/bootstrap/on-node-configured.sh" in stderr
    assert len((shared(box) / "miniforge3" / "calls.log").read_text().splitlines()) == 1, "conda was not run again"


def test_3_a_dry_run_prints_what_would_run_and_runs_nothing(box, project):
    log = box.state / "sandbox" / "log" / "clustertools-bootstrap.log"
    before = log.read_text()
    result = box.cli("sandbox", "bootstrap", "--dry-run", "--miniforge-sha256", "f" * 64, cwd=project)
    assert result.returncode == 0, err(result)
    assert out(result).startswith("would run on the sandbox's node: bash -c ")
    assert f"--miniforge-sha256 {'f' * 64}" in out(result) and "--env-file env/study.yml" in out(result)
    assert log.read_text() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--miniforge-url", "https://example.com/Miniforge3.sh; rm -rf ~"], "--miniforge-url: "),
        (["--miniforge-sha256", "not-hex"], "--miniforge-sha256: must be the installer's sha256"),
        (["--image", "alpine:3.19", "--runtime", "none"], "--image alpine:3.19 needs a container runtime"),
        (["--env-file", "no-such-file.yml"], "does not exist"),
    ],
)
def test_hostile_or_impossible_options_are_refused_before_anything_runs(box, project, args, message):
    result = box.cli("sandbox", "bootstrap", *args, cwd=project)
    assert result.returncode != 0 and message in err(result) and len(err(result).strip().splitlines()) == 1
    assert out(result) == ""


def test_4_a_checksum_mismatch_stops_the_run_at_step_miniforge(box, project):
    result = box.cli("sandbox", "bootstrap", "--miniforge-sha256", "0" * 64, cwd=project)
    stdout, stderr = out(result), err(result)
    assert result.returncode == 1
    assert f"sha256 mismatch for {MIRROR}: expected {'0' * 64}, got {SHA}; nothing installed" in stdout
    assert "step miniforge failed (exit 1)" in stdout and "step conda-env" not in stdout
    assert (
        stderr.strip().splitlines()[-1]
        == "Error: node bootstrap failed at step miniforge (exit 1) (hint: clustertools triage -c sandbox)"
    )


def test_5_triage_names_the_failed_step(box, project):
    result = box.cli("triage", "-c", "sandbox", cwd=project)
    stdout = out(result)
    assert result.returncode == 0, err(result)
    lines = stdout.splitlines()
    assert lines[0] == "cluster sandbox (sandbox): node head (the sandbox's head node, where `sandbox bootstrap` runs)"
    assert re.fullmatch(
        r"node head: bootstrap FAILED at step miniforge \(exit 1\) at "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        lines[1],
    ), lines[1]
    assert lines[2].startswith("  | sha256 mismatch for ")
    assert "fleet: not a ParallelCluster cluster (sandbox): no protected mode" in lines
    for source in ("bootstrap", "cloud-init-output", "slurmd", "slurmctld", "sinfo"):
        assert any(line.startswith(f"== {source} (head node: ") for line in lines), source
    report = json.loads(out(box.cli("triage", "-c", "sandbox", "--json", "--lines", "3", cwd=project)))
    assert report["bootstrap"]["state"] == "failed" and report["bootstrap"]["failed_step"] == "miniforge"
    assert report["bootstrap"]["exit_code"] == 1 and report["protected"] is False
    assert all(len(s["lines"]) <= 3 for s in report["sources"])
    # The sandbox's secret key for its S3 endpoint is in every SSH session's environment: never printed.
    assert "AWS_SECRET_ACCESS_KEY" not in stdout


def test_6_back_to_the_right_checksum_the_install_is_intact_and_triage_says_ok(box, project):
    """The refused installer changed nothing: the earlier install and its marker still stand."""
    result = box.cli("sandbox", "bootstrap", cwd=project)
    assert result.returncode == 0, out(result) + err(result)
    assert "bootstrap finished OK: nothing to do" in out(result)
    triage = out(box.cli("triage", cwd=project))
    assert "node head: bootstrap OK at " in triage


def env_dir(text: str) -> str:
    """Where the head node solves an environment file: /home/clustertools/envs/PROJECT-<12 hex of its sha256>."""
    return f"/home/clustertools/envs/study-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def test_7_bootstrap_refresh_a_running_task_keeps_its_environment_the_next_run_gets_the_new_one(box, project, tmp_path):
    """Issue 17, item 3: edit the environment file, `clustertools bootstrap refresh`; a task running since before
    keeps the environment it started with to its end, the next run's tasks see the new one, and each record says
    which ran."""
    from tests.integration.run_helpers import status, submit, wait_for_run, write_subjects

    env_file = project / "envs" / "study.yml"
    old_text = env_file.read_text()
    release = tmp_path / "release"
    wait = (
        f'echo "start $CONDA_PREFIX"; while [ ! -e {release} ]; do sleep 0.2; done; '
        'test -d "$CONDA_PREFIX/conda-meta" && echo "end $CONDA_PREFIX"'
    )
    first = submit(box, project, str(write_subjects(project, ["early"], "early.txt")), "--command", wait)["run"]
    deadline = time.monotonic() + 120
    while status(box, project, first)["counts"]["RUNNING"] != 1:
        assert time.monotonic() < deadline, "the first task never started"
        time.sleep(0.5)
    new_text = old_text + "  - scipy\n"
    env_file.write_text(new_text)
    try:
        refreshed = box.cli("bootstrap", "refresh", "-c", "sandbox", cwd=project)
        assert refreshed.returncode == 0, out(refreshed) + err(refreshed)
        assert "node bootstrap finished OK: ran conda-env, node-env" in err(refreshed), err(refreshed)
        assert f"CT_CONDA_ENV={env_dir(new_text)}" in (shared(box) / "bootstrap.env").read_text()
        second = submit(
            box, project, str(write_subjects(project, ["late"], "late.txt")), "--command", 'echo "in $CONDA_PREFIX"'
        )["run"]
        (late,) = wait_for_run(box, project, second)["subjects"]
        assert (late["state"], late["env"]) == ("SUCCEEDED", env_dir(new_text))
        assert out(box.cli("logs", second, "late", cwd=project)).strip() == f"in {env_dir(new_text)}"
        release.touch()
        (early,) = wait_for_run(box, project, first)["subjects"]
        assert (early["state"], early["env"]) == ("SUCCEEDED", env_dir(old_text))
        assert out(box.cli("logs", first, "early", cwd=project)).split("\n")[:2] == [
            f"start {env_dir(old_text)}",
            f"end {env_dir(old_text)}",
        ]
    finally:
        release.touch()
        env_file.write_text(old_text)
