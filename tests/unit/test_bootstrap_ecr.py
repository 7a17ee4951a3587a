"""A private image in Amazon ECR: the node's instance role logs in (`aws ecr get-login-password`), and the token
reaches each runtime without touching a file or a command line: podman reads an auth file that is a pipe, docker
a config.json that is a pipe, apptainer its APPTAINER_DOCKER_* environment, enroot a .credentials file that holds
the command, not the password (enroot's documented way). Tested at this boundary with stand-ins (no ECR, no
engines here): each records what it was given; no file the bootstrap leaves, and no command line, holds the
token. An image elsewhere is pulled with no login at all."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.unit.test_bootstrap import RECORD, Node, ok, write_exe

TOKEN = "eyJwYXlsb2FkIjoiZWNyLXRva2VuLXNlY3JldCJ9"  # what get-login-password prints
ECR = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/lab/kwyk:1.0"
AWS = (
    RECORD
    + f"""
[ "$1 $2" = "ecr get-login-password" ] && {{ echo "{TOKEN}"; exit 0; }}
exit 64
"""
)
SEEN = 'seen="$CT_TEST_BIN/../seen"; mkdir -p "$seen"\n'
STANDINS = {
    "podman": RECORD
    + SEEN
    + """
case $1 in
  pull) while [ $# -gt 0 ]; do
          [ "$1" = --authfile ] && { cat "$2" > "$seen/podman-auth"; echo "$2" > "$seen/podman-authfile"; }
          shift
        done ;;
  save) while [ "$1" != -o ]; do shift; done; echo archive > "$2" ;;
  image) echo sha256:feed ;;
esac
exit 0
""",
    "docker": RECORD
    + SEEN
    + """
[ "$1" = --config ] && { cat "$2/config.json" > "$seen/docker-config"; shift 2; }
[ "$1" = save ] && printf 'tar\\n' > "$3"
[ "$1 $2" = "image inspect" ] && echo "x@sha256:feed"
exit 0
""",
    "apptainer": RECORD
    + SEEN
    + """
[ "$1" = pull ] || exit 0
[ -z "${APPTAINER_DOCKER_PASSWORD:-}" ] ||
  printf '%s:%s' "$APPTAINER_DOCKER_USERNAME" "$APPTAINER_DOCKER_PASSWORD" > "$seen/apptainer-env"
printf 'sif\\n' > "$3"
""",
    "enroot": RECORD
    + SEEN
    + """
[ "$1" = import ] || exit 0
[ -z "${ENROOT_CONFIG_PATH:-}" ] || cat "$ENROOT_CONFIG_PATH/.credentials" > "$seen/enroot-credentials"
printf 'sqsh\\n' > "$3"
""",
}


@pytest.fixture
def node(tmp_path: Path) -> Node:
    node = Node(tmp_path)
    write_exe(tmp_path / "bin" / "aws", AWS)
    for name, body in STANDINS.items():
        write_exe(tmp_path / "bin" / name, body)
    return node


def token_anywhere(node: Node) -> list[str]:
    """Files under the node's dirs (the stand-ins' own records aside) and calls that hold the token."""
    found = [
        str(p)
        for p in node.tmp.rglob("*")
        if p.is_file() and not {"seen", "bin"} & set(p.parts) and TOKEN.encode() in p.read_bytes()
    ]
    return found + [c for c in node.calls() if TOKEN in c]


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_podman_and_docker_read_the_login_from_a_pipe(node: Node, runtime: str):
    ok(node.run("--runtime", runtime, "--image", f"docker://{ECR}"))
    seen = node.tmp / "seen"
    text = (seen / f"{runtime}-auth" if runtime == "podman" else seen / "docker-config").read_text()
    auth = json.loads(text)["auths"]
    assert list(auth) == ["123456789012.dkr.ecr.eu-west-2.amazonaws.com"]
    assert base64.b64decode(next(iter(auth.values()))["auth"]).decode() == f"AWS:{TOKEN}"
    if runtime == "podman":
        assert (seen / "podman-authfile").read_text().startswith("/dev/fd/"), "a pipe, not a file"
    assert "aws ecr get-login-password --region eu-west-2" in node.calls()
    assert token_anywhere(node) == []


def test_apptainer_gets_the_login_in_its_own_environment(node: Node):
    ok(node.run("--runtime", "apptainer", "--image", f"docker://{ECR}"))
    assert (node.tmp / "seen" / "apptainer-env").read_text() == f"AWS:{TOKEN}"
    assert token_anywhere(node) == []


def test_enroot_is_given_the_command_not_the_password(node: Node):
    ok(node.run("--runtime", "enroot", "--image", f"docker://{ECR}"))
    credentials = (node.tmp / "seen" / "enroot-credentials").read_text()
    assert credentials == (
        "machine 123456789012.dkr.ecr.eu-west-2.amazonaws.com login AWS password "
        "$(aws ecr get-login-password --region eu-west-2)\n"
    )
    assert token_anywhere(node) == []


@pytest.mark.parametrize("runtime", ["podman", "docker", "apptainer", "enroot"])
def test_an_image_elsewhere_is_pulled_without_a_login(node: Node, runtime: str):
    ok(node.run("--runtime", runtime, "--image", "docker://ghcr.io/acme/seg:1.0"))
    assert not any(c.startswith("aws ecr") for c in node.calls())
    assert not (node.tmp / "seen").exists() or not any((node.tmp / "seen").iterdir())


def test_the_first_task_pulls_an_image_the_bootstrap_did_not_with_the_same_login(tmp_path: Path):
    """The run wrapper's own pull (job.container changed since `up`): the same pipe, the same role."""
    import subprocess

    from tests.unit.run_fixtures import lay_out_run_dir, make_run

    fake_aws = (
        f'#!/bin/bash\n[ "$1 $2" = "ecr get-login-password" ] && {{ echo "{TOKEN}"; exit 0; }}\n'
        'mkdir -p "$(dirname "$0")/../s3" && cp -R "${@: -2:1}." "$(dirname "$0")/../s3/"\n'
    )
    run = make_run(("sub-1",), command="true", container=f"docker://{ECR}")
    run = run.model_copy(update={"remote_dir": str(tmp_path / "run"), "shared_dirs": []})
    directory = lay_out_run_dir(tmp_path, run, fake_aws)
    podman = STANDINS["podman"].replace("case $1 in", 'while [ "${1#--}" != "$1" ]; do shift 2; done\ncase $1 in', 1)
    write_exe(tmp_path / "bin" / "podman", podman.replace('"$CT_TEST_CALLS"', '"$CT_TEST_BIN/../calls.log"'))
    (tmp_path / "scratch").mkdir()
    (tmp_path / "home").mkdir()
    result = subprocess.run(
        ["bash", str(directory / "wrapper.sh"), "1", "0"],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "TMPDIR": str(tmp_path / "scratch"),
            "HOME": str(tmp_path / "home"),
            "CT_TEST_BIN": str(tmp_path / "bin"),
            "SLURM_ARRAY_TASK_ID": "0",
            "SLURM_ARRAY_JOB_ID": "7",
        },
        cwd=directory,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    auth = json.loads((tmp_path / "seen" / "podman-auth").read_text())["auths"]
    assert base64.b64decode(auth["123456789012.dkr.ecr.eu-west-2.amazonaws.com"]["auth"]).decode() == f"AWS:{TOKEN}"
    assert (tmp_path / "seen" / "podman-authfile").read_text().startswith("/dev/fd/")
    leaks = [
        str(p)
        for p in tmp_path.rglob("*")
        if p.is_file() and not {"seen", "bin"} & set(p.parts) and TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == []


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        (f"docker://{ECR}", "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/x:1",
            "arn:aws-cn:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/x:1",
            "arn:aws-us-gov:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        ),
        ("docker://public.ecr.aws/lab/kwyk:1.0", None),  # ECR Public needs no login
        ("docker://evil.com/123456789012.dkr.ecr.eu-west-2.amazonaws.com/x:1", None),
        ("docker://123456789012.dkr.ecr.eu-west-2.amazonaws.com.evil.com/x:1", None),
    ],
)
def test_which_images_are_in_ecr_and_what_their_nodes_need(image, policy):
    from cluster_tools.model.aws.ecr import ecr_read_policy

    assert ecr_read_policy(image) == policy
