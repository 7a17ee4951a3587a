"""`clustertools bootstrap refresh` of a ParallelCluster cluster (issue 17, item 3) at our boundary: bootstrap/ and the
environment file go to a real S3 endpoint (moto's server) as `up` sends them; the head node's SSH connection is the
edge given to the service, recorded here. On the node, the run itself is the script tests/unit/test_bootstrap.py runs
(a changed environment file solved beside the old one), and on the sandbox test_bootstrap_sandbox.py's test_7."""

from __future__ import annotations

import contextlib
import shlex

import boto3
import pytest

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.remote import bootstrap_refresh as br
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.ssh import RemoteResult
from tests.moto_aws import moto_server

MINIFORGE = "s3://mirror/Miniforge3.sh"
PROJECT = f"""\
name: study
cluster: study
storage:
  output: s3://study-out/study
bootstrap:
  miniforge_url: {MINIFORGE}
  miniforge_sha256: {"a" * 64}
  env_file: envs/study.yml
parallelcluster:
  region: us-east-1
  subnet_id: subnet-0123456789abcdef0
  allowed_ips: 203.0.113.7/32
  queues:
    - name: spot
      instance_types: [c6i.xlarge]
      max_count: 4
"""
RECORD = ClusterRecord(
    name="study",
    provider="parallelcluster",
    host="192.0.2.10",
    user="ec2-user",
    known_hosts="/nonexistent",
    region="us-east-1",
)


@pytest.fixture(scope="module")
def s3():
    with moto_server() as url:
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="placeholder",
            aws_secret_access_key="placeholder",
        )
        client.create_bucket(Bucket="study-out")
        yield client


class HeadNode:
    """The head node's SSH connection: records each command, answers with ``answer``."""

    def __init__(self, answer: RemoteResult | None = None) -> None:
        self.commands: list[str] = []
        self.answer = answer

    @contextlib.contextmanager
    def connect(self, record):
        assert record == RECORD
        outer = self

        class Conn:
            def run(self, command, timeout=None):
                outer.commands.append(command)
                return outer.answer or RemoteResult(command, 0, b"bootstrap finished OK (2 step(s) run)\n", b"")

        yield Conn()


def project_dir(tmp_path, env_text="name: study\ndependencies:\n  - numpy\n"):
    (tmp_path / "envs").mkdir(exist_ok=True)
    (tmp_path / "envs" / "study.yml").write_text(env_text)
    (tmp_path / "clustertools.yaml").write_text(PROJECT)
    return tmp_path


def refresh(tmp_path, s3, head, **kwargs):
    directory = project_dir(tmp_path, **kwargs)
    return br.refresh_bootstrap(
        StateDir(tmp_path / "state"),
        parse_project(PROJECT),
        RECORD,
        project_dir=directory,
        connect=head.connect,
        s3_client=s3,
    )


def test_refresh_uploads_what_changed_and_runs_the_head_nodes_own_bootstrap_with_sudo(tmp_path, s3):
    head = HeadNode()
    result = refresh(tmp_path, s3, head)
    assert result.exit_code == 0 and result.outcome is not None
    keys = {upload.key: upload.action for upload in result.uploads}
    assert keys["clustertools/study/bootstrap/on-node-configured.sh"] in ("upload", "unchanged")
    assert keys["clustertools/study/bootstrap/env/study.yml"] in ("upload", "unchanged")
    body = s3.get_object(Bucket="study-out", Key="clustertools/study/bootstrap/env/study.yml")["Body"].read()
    assert body == b"name: study\ndependencies:\n  - numpy\n"
    (command,) = head.commands
    argv = shlex.split(command)
    assert argv[:3] == ["sudo", "-n", "bash"]
    script, args = br.head_node_script(parse_project(PROJECT))
    assert argv[5:9] == ["bootstrap-refresh", script, br.REFRESH_SCRIPT, br.REFRESH_OUTPUT] and argv[9:] == args
    # the Args the rendered cluster gives its head node: this project's, this cluster's bootstrap prefix
    assert script == "s3://study-out/clustertools/study/bootstrap/on-node-configured.sh"
    assert args[args.index("--env-file") + 1] == "env/study.yml" and args[args.index("--cluster") + 1] == "study"
    # a changed environment file is sent again; the unchanged script is not
    again = refresh(tmp_path, s3, HeadNode(), env_text="name: study\ndependencies:\n  - numpy\n  - scipy\n")
    actions = {upload.key: upload.action for upload in again.uploads}
    assert actions["clustertools/study/bootstrap/env/study.yml"] == "upload"
    assert actions["clustertools/study/bootstrap/on-node-configured.sh"] == "unchanged"


def test_a_failed_step_is_returned_with_its_name(tmp_path, s3):
    said = "".join(
        f"2026-11-30T10:00:0{i}Z clustertools-bootstrap[study/head]: {line}\n"
        for i, line in enumerate(
            (
                "bootstrap start: project=study cluster=study role=head",
                "step conda-env: start",
                "step conda-env failed (exit 1)",
            )
        )
    )
    head = HeadNode(RemoteResult("x", 1, said.encode(), b""))
    result = refresh(tmp_path, s3, head)
    assert result.exit_code == 1 and result.outcome.failed_step == "conda-env"


def test_a_login_user_without_passwordless_sudo_is_told_so(tmp_path, s3):
    head = HeadNode(RemoteResult("x", 1, b"", b"sudo: a password is required\n"))
    with pytest.raises(ClusterToolsError, match="may not run sudo without a password"):
        refresh(tmp_path, s3, head)


def test_a_registered_cluster_is_not_bootstrapped(tmp_path, s3):
    registered = RECORD.model_copy(update={"provider": "ssh"})
    with pytest.raises(ConfigError, match="registered, not made by clustertools"):
        br.refresh_bootstrap(
            StateDir(tmp_path / "state"),
            parse_project(PROJECT),
            registered,
            project_dir=project_dir(tmp_path),
            connect=HeadNode().connect,
            s3_client=s3,
        )
