"""The run wrapper uses what the node bootstrap left in shared storage (bootstrap.env): the conda
environment on PATH, and the image pulled once (a SIF) instead of a pull per task. Run by bash on this
machine with stand-ins: `aws` copies local folders, `apptainer` prints the image it was given (apptainer
cannot be installed here). The tests run as root, as the bootstrap does, so the files they write are root's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cluster_tools.render.run_scripts import render_manifest, render_wrapper
from tests.unit.run_fixtures import lay_out_run_dir, make_run

IMAGE = "docker://ghcr.io/acme/seg@sha256:" + "e" * 64
# The wrapper runs aws in a clean environment: the stand-ins find their folders from where they lie.
FAKE_AWS = (
    '#!/bin/bash\nFAKE_S3=$(cd "$(dirname "$0")/.." && pwd)/s3\n'
    'mkdir -p "$FAKE_S3" && cp -R "${@: -2:1}." "$FAKE_S3/"\n'
)
FAKE_APPTAINER = (
    "#!/bin/bash\n# apptainer exec [OPTIONS] IMAGE env -- ARGV...\nargs=()\n"
    'while [[ $1 != env ]]; do args+=("$1"); shift; done\necho "image=${args[-1]}"\nexec "$@"\n'
)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap.env must be root's; the tests run as root")


def setup(tmp_path: Path, *, container: str | None, mode: int = 0o644) -> Path:
    shared = tmp_path / "shared"
    env = shared / "clustertools" / "envs" / "study"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "seg-tool").write_text("#!/bin/sh\necho seg-tool from the conda env\n")
    (env / "bin" / "seg-tool").chmod(0o755)
    sif = shared / "clustertools" / "images" / "seg.sif"
    sif.parent.mkdir(parents=True)
    sif.write_text("not really a SIF")
    bootstrap_env = shared / "clustertools" / "bootstrap.env"
    bootstrap_env.write_text(
        f"CT_RUNTIME=apptainer\nCT_IMAGE={IMAGE.replace(':', chr(92) + ':')}\nCT_IMAGE_FILE={sif}\nCT_CONDA_ENV={env}\n"
    )
    bootstrap_env.chmod(mode)
    command = 'echo "prefix=$CONDA_PREFIX"; seg-tool'
    run = make_run(("sub-1",), command=command, container=container)
    run = run.model_copy(
        update={"remote_dir": str(tmp_path / "run"), "shared_dirs": [str(tmp_path / "nowhere"), str(shared)]}
    )
    directory = tmp_path / "run"
    (directory / "attempts" / "1").mkdir(parents=True)
    (directory / "wrapper.sh").write_text(render_wrapper(run))
    (directory / "attempts" / "1" / "manifest").write_text(render_manifest(run.columns, run.attempts[0]))
    (tmp_path / "bin").mkdir()
    for name, text in (("aws", FAKE_AWS), ("apptainer", FAKE_APPTAINER)):
        (tmp_path / "bin" / name).write_text(text)
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "scratch").mkdir()
    return directory


def run_task(directory: Path) -> tuple[subprocess.CompletedProcess, str]:
    root = directory.parent
    env = {
        "PATH": f"{root / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(root / "scratch"),
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
    }
    result = subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=60,
    )
    return result, (directory / "logs" / "sub-1.1.out").read_text()


def test_the_conda_environment_the_bootstrap_solved_is_on_path(tmp_path):
    result, out = run_task(setup(tmp_path, container=None))
    assert result.returncode == 0, result.stderr
    assert out == f"prefix={tmp_path}/shared/clustertools/envs/study\nseg-tool from the conda env\n"


def test_the_image_pulled_once_is_used_instead_of_the_reference(tmp_path):
    result, out = run_task(setup(tmp_path, container=IMAGE))
    assert result.returncode == 0, result.stderr
    assert out.splitlines()[0] == f"image={tmp_path}/shared/clustertools/images/seg.sif"


def test_another_image_is_run_by_its_reference(tmp_path):
    other = "docker://ghcr.io/acme/other:1.0"
    result, out = run_task(setup(tmp_path, container=other))
    assert result.returncode == 0, result.stderr
    assert out.splitlines()[0] == f"image={other}"


def test_a_bootstrap_env_others_may_write_is_ignored(tmp_path):
    directory = setup(tmp_path, container=None, mode=0o666)
    result, out = run_task(directory)
    assert "not root's, or writable by others" in (directory / "logs" / "sub-1.1.err").read_text() + result.stderr
    assert out.startswith("prefix=\n")  # nothing of it was used
    record = json.loads(next((directory / "records" / "new").glob("sub-1.1.*.json")).read_text())
    assert record["state"] == "FAILED" and record["exit_code"] == 127  # seg-tool is not on PATH


SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hcp/keys-AbCdEf"
KEY_ID, SECRET_KEY = "AKIAHCPEXAMPLEKEY123", "hcp/Secret+Value/ThatMustNeverLeak0000000"
RECORDING_AWS = f"""#!/bin/bash
# stand-in aws: secretsmanager answers the secret; s3 cp copies local folders; every call is logged with
# whether it carried credentials (never their values)
FAKE_S3=$(cd "$(dirname "$0")/.." && pwd)/s3 CALLS=$(cd "$(dirname "$0")/.." && pwd)/calls
echo "$1 $2 key=${{AWS_ACCESS_KEY_ID:-none}}" | sed "s/{KEY_ID}/FROM-SECRET/" >>"$CALLS"
if [[ $1 == secretsmanager ]]; then
  [[ $4 == {SECRET_ARN} ]] || exit 254
  printf '%s\\n' '{{"AccessKeyId": "{KEY_ID}", "SecretAccessKey": "{SECRET_KEY}"}}'
  exit 0
fi
src=${{@: -2:1}} dst=${{@: -1}}
src=${{src/s3:\\/\\/in\\//$FAKE_S3/in/}}
dst=${{dst/s3:\\/\\/bucket-1\\//$FAKE_S3/out/}}
mkdir -p "$dst" && cp -R "$src/." "$dst/"
"""


def run_with_secret(tmp_path: Path, command: str, secret_arn: str) -> tuple[Path, subprocess.CompletedProcess]:
    """One task of a run whose input needs ``secret_arn``, run by the wrapper with the recording aws."""
    run = make_run(("sub-1",), command=command)
    run = run.model_copy(
        update={"remote_dir": str(tmp_path / "run"), "input": "s3://in/hcp", "input_credentials": secret_arn}
    )
    directory = lay_out_run_dir(tmp_path, run, RECORDING_AWS)
    (tmp_path / "scratch").mkdir()
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "TMPDIR": str(tmp_path / "scratch"),
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "7",
    }
    return directory, subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=60,
    )


def test_input_credentials_reach_the_input_staging_alone_and_are_never_written(tmp_path):
    """The input's own credentials (a Secrets Manager secret) are used for staging the input only: not for
    the upload, not in the command's environment, and their value is in no file the task leaves."""
    (tmp_path / "s3" / "in" / "hcp" / "sub-1").mkdir(parents=True)
    (tmp_path / "s3" / "in" / "hcp" / "sub-1" / "rfMRI.nii").write_text("x")
    directory, result = run_with_secret(
        tmp_path, 'env | grep -c "^AWS_ACCESS_KEY_ID=" || true; ls "$INPUT_DIR"', SECRET_ARN
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "secretsmanager get-secret-value key=none",
        "s3 cp key=FROM-SECRET",
        "s3 cp key=none",
    ]
    assert (directory / "logs" / "sub-1.1.out").read_text() == "0\nrfMRI.nii\n"  # not in the command's env
    for path in [*tmp_path.rglob("*")]:
        if path.is_file() and path.name != "aws":
            text = path.read_text(errors="replace")
            assert SECRET_KEY not in text and KEY_ID not in text, path


def test_unreadable_input_credentials_fail_the_subject_with_a_reason(tmp_path):
    directory, result = run_with_secret(tmp_path, "true", SECRET_ARN.replace("keys", "gone"))
    assert result.returncode == 97
    record = json.loads(next((directory / "records" / "new").glob("sub-1.1.FAILED.json")).read_text())
    assert record["error"].startswith("reading the input's credentials (secret arn:aws:secretsmanager:")
