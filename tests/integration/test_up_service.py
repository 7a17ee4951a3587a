"""`up` (services/aws/lifecycle_up.py) with ParallelCluster replaced at OUR transport's boundary.

cluster_tools.transport.pcluster's functions are replaced by fakes answering with recorded records
(tests/unit/pcluster_records.py). That boundary is the only fake: pre-flight and the bootstrap upload talk to
a real moto server on 127.0.0.1, started by this module (so it is here, not in tests/unit). The unit tests
of describe, which need no server, are tests/unit/test_describe_service.py.
"""

from __future__ import annotations

import hashlib

import pytest
from botocore.exceptions import ClientError

from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.services.aws import lifecycle_up as lu
from cluster_tools.services.aws.bootstrap_upload import sync_bootstrap
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.store.cluster_store import load_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport import pcluster as pc
from tests.moto_aws import moto_aws
from tests.unit.pcluster_fakes import transport_installer
from tests.unit.pcluster_records import COMPLETE, CREATED, FAILED, HEAD, IN_PROGRESS, NOT_FOUND, REGION, T0, described


@pytest.fixture
def transport(monkeypatch):
    return transport_installer(monkeypatch)


def event(logical, status, minute, reason="", kind="AWS::EC2::Instance"):
    at = T0.replace(minute=minute)
    return pc.StackEvent(
        event_id=f"{logical}-{status}-{minute}",
        timestamp=at,
        logical_id=logical,
        resource_type=kind,
        status=status,
        reason=reason,
    )


@pytest.fixture(scope="module")
def aws():
    with moto_aws(key_name="up-key", bucket="up-out", official_ami=False) as stack:
        yield stack


def project(aws, *, bucket="up-out", extra=""):
    text = render_project_file("study", "sandbox", f"s3://{bucket}/study")
    text = text.replace("subnet-0123456789abcdef0", aws["subnet"]).replace(
        "# key_name: my-key-pair", "key_name: up-key"
    )
    return parse_project(text.replace("  template: spot-cpu", "  template: spot-cpu" + extra))


@pytest.fixture
def bootstrap(tmp_path):
    root = tmp_path / "bootstrap"
    root.mkdir()
    (root / "on-node-configured.sh").write_text("#!/bin/sh\nexit 0\n")
    (root / "README.md").write_text("node bootstrap\n")
    return root


def bring_up(aws, state, bootstrap, project_=None, **kwargs):
    args = {
        "allowed_ip": "203.0.113.7/32",
        "bootstrap_dir": bootstrap,
        "poll_seconds": 0,
        "sleep": lambda s: None,
        "home": state.root,
        **kwargs,
    }
    return lu.up(lu.UpRequest(project_ or project(aws), state, **args))


def test_up_uploads_creates_waits_and_records(aws, transport, tmp_path, bootstrap):
    describe = transport("describe_cluster", NOT_FOUND, IN_PROGRESS, IN_PROGRESS, COMPLETE)
    create = transport("create_cluster", CREATED)
    state, seen = StateDir(tmp_path / "state"), []
    result = bring_up(aws, state, bootstrap, on_status=lambda d: seen.append(d.status))
    assert result.outcome == "created" and result.cluster == COMPLETE
    assert [s for s in seen] == ["CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    assert len(describe.calls) == 4 and describe.calls[0] == (("study",), {"region": REGION})
    ((args, kwargs),) = create.calls
    assert args[0] == "study" and "AllowedIps: 203.0.113.7/32" in args[1] and kwargs == {"region": REGION}
    # bootstrap/ is in S3 with each file's sha256 as metadata
    head = aws["s3"].head_object(Bucket="up-out", Key="clustertools/study/bootstrap/on-node-configured.sh")
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"#!/bin/sh\nexit 0\n").hexdigest()
    assert sorted(b.key for b in result.bootstrap) == [
        "clustertools/study/bootstrap/README.md",
        "clustertools/study/bootstrap/on-node-configured.sh",
    ]
    record = load_cluster(state, "study")
    assert (record.provider, record.host, record.user, record.region) == (
        "parallelcluster",
        "127.0.0.1",
        "ec2-user",
        REGION,
    )
    assert record.known_hosts == state.known_hosts("study") and record.identity_file is None
    # moto knows no instance of that id: its console cannot be read, so trust on first use (with a note)
    assert (
        "cannot read the console output of i-0a1b2c3d4e5f60718 (ClientError InvalidInstanceID.NotFound)"
        in result.notes[0]
    )
    assert result.host_key is None and "host key not pinned yet" in result.notes[1]  # nothing listens on :22


def test_a_console_without_host_keys_falls_back_to_first_use(aws, transport, tmp_path, bootstrap):
    """A real moto instance: moto's console output is a fixed kernel log without cloud-init's key blocks."""
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    head = pc.Instance(
        instance_id=instance,
        instance_type="t3.medium",
        state="running",
        private_ip="10.0.1.25",
        public_ip="127.0.0.1",
        launch_time=T0,
    )
    transport("describe_cluster", NOT_FOUND, described("CREATE_COMPLETE", "CREATE_COMPLETE", head=head))
    transport("create_cluster", CREATED)
    slept, progress = [], []
    result = bring_up(aws, StateDir(tmp_path / "state"), bootstrap, sleep=slept.append, on_progress=progress.append)
    # asked again every 15 s for 5 minutes (cloud-init prints the keys at the end of the bootstrap), then said
    assert slept == [15.0] * 20 and progress[0].startswith(f"waiting up to 5 min for the console output of {instance}")
    assert result.notes[0] == (
        f"the console output of {instance} showed no SSH host keys in 5 min: host key trusted "
        "on first use, and pinned then"
    )


def test_host_keys_on_the_console_are_pinned_without_trust(aws, transport, tmp_path, bootstrap):
    """moto cannot print cloud-init's key blocks: the console text is handed over by a stand-in of the EC2
    client's one call (the recorded Amazon Linux console in tests/golden/console/)."""
    from pathlib import Path

    console = (Path(__file__).parents[1] / "golden" / "console" / "al2023.txt").read_text()

    class ConsoleOnly:
        def get_console_output(self, InstanceId):
            assert InstanceId == HEAD.instance_id
            return {"InstanceId": InstanceId, "Output": console}

    state = StateDir(tmp_path / "state")
    result = lu.UpResult("study", REGION, "created", [], "", cluster=COMPLETE)
    spec = project(aws).parallelcluster
    lu._record(result, state, spec, None, tmp_path, None, fresh=True, ec2=ConsoleOnly())
    assert result.host_key_source == "console output"
    assert result.host_key == (
        "ecdsa-sha2-nistp256 SHA256:PWfctBL2M74AuTzt73+9N8gXRfcrlMvvGeWaSyUx7W0, "
        "ssh-ed25519 SHA256:SYgp49+NizLgAKsy0GXJihpcjuTW2/Ed9EDBSpb/K9A"
    )
    pinned = sorted(line.split()[1] for line in state.known_hosts("study").read_text().splitlines())
    assert pinned == ["ecdsa-sha2-nistp256", "ssh-ed25519"]
    assert result.notes[-1].startswith("login failed for now")  # nothing listens on 127.0.0.1:22


def test_up_shows_each_stack_event_once_oldest_first(aws, transport, tmp_path, bootstrap):
    stack = event("study", "CREATE_IN_PROGRESS", 1, "User Initiated", "AWS::CloudFormation::Stack")
    head = event("HeadNode", "CREATE_IN_PROGRESS", 2)
    done = event("HeadNode", "CREATE_COMPLETE", 9)
    # pages come newest first; the second poll repeats what the first showed
    transport("get_cluster_stack_events", ([head, stack], None), ([done, head, stack], None))
    transport("describe_cluster", NOT_FOUND, IN_PROGRESS, COMPLETE)
    transport("create_cluster", CREATED)
    shown = []
    bring_up(aws, StateDir(tmp_path / "state"), bootstrap, on_event=shown.append)
    assert shown == [stack, head, done]


def test_a_failed_create_names_the_first_failed_resource(aws, transport, tmp_path, bootstrap):
    cause = event(
        "HeadNode", "CREATE_FAILED", 9, "Failed to receive 1 resource signal(s) within the specified duration"
    )
    cascade = event("ComputeFleet", "CREATE_FAILED", 10, "Resource creation cancelled", "AWS::CloudFormation::Stack")
    transport("get_cluster_stack_events", ([cause], None), ([cascade, cause], None))
    transport("describe_cluster", NOT_FOUND, IN_PROGRESS, FAILED)
    transport("create_cluster", CREATED)
    shown = []
    with pytest.raises(ClusterToolsError) as caught:
        bring_up(aws, StateDir(tmp_path / "state"), bootstrap, on_event=shown.append)
    assert caught.value.message == (
        "cluster study failed: CREATE_FAILED: HeadNode (AWS::EC2::Instance) CREATE_FAILED: Failed to receive 1 "
        "resource signal(s) within the specified duration; Failed to execute OnNodeConfigured script."
    )
    assert shown == [cause, cascade]


def test_stack_events_that_cannot_be_read_leave_the_status_display(aws, transport, tmp_path, bootstrap):
    transport("get_cluster_stack_events", pc.PclusterError("read stack events of study: AccessDenied", status=403))
    transport("describe_cluster", NOT_FOUND, IN_PROGRESS, IN_PROGRESS, COMPLETE)
    transport("create_cluster", CREATED)
    seen = []
    result = bring_up(aws, StateDir(tmp_path / "state"), bootstrap, on_status=lambda d: seen.append(d.status))
    assert result.outcome == "created" and seen[-1] == "CREATE_COMPLETE"


BOOTSTRAP_SECTION = """bootstrap:
  miniforge_url: https://github.com/conda-forge/miniforge/releases/download/24.3.0-0/Miniforge3-Linux-x86_64.sh
  miniforge_sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  env_file: envs/study.yml
"""


def project_with_env_file(aws):
    text = render_project_file("study", "sandbox", "s3://up-out/study")
    text = text.replace("subnet-0123456789abcdef0", aws["subnet"]).replace(
        "# key_name: my-key-pair", "key_name: up-key"
    )
    return parse_project(text + BOOTSTRAP_SECTION)


def test_the_environment_file_goes_up_beside_bootstrap(aws, transport, tmp_path, bootstrap):
    transport("describe_cluster", NOT_FOUND, COMPLETE)
    transport("create_cluster", CREATED)
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "study.yml").write_text("name: study\ndependencies: [python=3.11]\n")
    result = bring_up(aws, StateDir(tmp_path / "state"), bootstrap, project_with_env_file(aws), project_dir=tmp_path)
    assert "clustertools/study/bootstrap/env/study.yml" in [b.key for b in result.bootstrap]
    body = aws["s3"].get_object(Bucket="up-out", Key="clustertools/study/bootstrap/env/study.yml")["Body"].read()
    assert body == b"name: study\ndependencies: [python=3.11]\n"
    assert '- "--env-file"\n        - env/study.yml' in result.config_yaml  # what the head node is told to fetch


def test_a_missing_environment_file_blocks_up(aws, transport, tmp_path, bootstrap):
    transport("create_cluster", AssertionError("must not create"))
    with pytest.raises(lu.UpBlocked) as caught:
        bring_up(aws, StateDir(tmp_path / "state"), bootstrap, project_with_env_file(aws), project_dir=tmp_path)
    assert [f.message for f in caught.value.findings if f.level == "error"] == [
        f"bootstrap.env_file {tmp_path}/envs/study.yml does not exist"
    ]


def test_unchanged_bootstrap_files_are_not_uploaded_again(aws, bootstrap):
    files = sorted(p for p in bootstrap.rglob("*") if p.is_file())
    first = sync_bootstrap(aws["s3"], "up-out", "sync/", bootstrap, files, upload=True)
    (bootstrap / "README.md").write_text("changed\n")
    second = sync_bootstrap(aws["s3"], "up-out", "sync/", bootstrap, files, upload=True)
    assert [b.action for b in first] == ["upload", "upload"]
    assert [(b.key, b.action) for b in second] == [
        ("sync/README.md", "upload"),
        ("sync/on-node-configured.sh", "unchanged"),
    ]


def test_an_existing_cluster_is_reported_not_created(aws, transport, tmp_path, bootstrap):
    transport("describe_cluster", COMPLETE)
    create = transport("create_cluster", AssertionError("must not create"))
    state = StateDir(tmp_path / "state")
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "up-key.pem").write_text("not a real key")
    result = bring_up(aws, state, bootstrap, home=tmp_path / "home")
    assert result.outcome == "exists" and create.calls == [] and result.bootstrap == []
    # not known here yet: recorded (and the default identity file found)
    assert load_cluster(state, "study").identity_file == tmp_path / "home" / ".ssh" / "up-key.pem"


def test_a_name_taken_between_describe_and_create_is_reported(aws, transport, tmp_path, bootstrap):
    transport("describe_cluster", NOT_FOUND, IN_PROGRESS)
    transport(
        "create_cluster", pc.PclusterClusterExists("create cluster study: Cluster study already exists", status=400)
    )
    result = bring_up(aws, StateDir(tmp_path / "state"), bootstrap)
    assert result.outcome == "exists" and result.cluster == IN_PROGRESS and result.record is None


def test_a_failed_create_names_the_reason_and_triage(aws, transport, tmp_path, bootstrap):
    transport("describe_cluster", NOT_FOUND, IN_PROGRESS, FAILED)
    transport("create_cluster", CREATED)
    state = StateDir(tmp_path / "state")
    with pytest.raises(ClusterToolsError) as caught:
        bring_up(aws, state, bootstrap)
    assert caught.value.one_line() == (
        "cluster study failed: CREATE_FAILED: Failed to execute OnNodeConfigured script. (hint: `clustertools triage "
        "-c study` shows why (the head node's logs); then delete it with `clustertools down -c study`)"
    )
    assert not state.cluster_file("study").exists()


def test_dry_run_uploads_and_creates_nothing(aws, transport, tmp_path, bootstrap):
    create = transport(
        "create_cluster",
        pc.CreateResult(
            name="study",
            dry_run=True,
            cluster=None,
            validation_messages=(
                pc.ValidationMessage("WARNING", "AsyncTimedUrlValidator", "Unable to access the url\n s3://x"),
            ),
        ),
    )
    describe = transport("describe_cluster", AssertionError("a dry run needs no describe"))
    aws["s3"].create_bucket(Bucket="up-dry")  # a bucket of its own: the other tests upload to up-out
    result = bring_up(
        aws,
        StateDir(tmp_path / "state"),
        bootstrap,
        project(aws, bucket="up-dry"),
        dry_run=True,
        suppress_validators=["KeyPairValidator"],
    )
    assert create.calls[0][1] == {"region": REGION, "dry_run": True, "suppress_validators": ["KeyPairValidator"]}
    assert describe.calls == [] and result.outcome == "dry-run"
    assert {b.action for b in result.bootstrap} == {"upload"}  # planned only
    with pytest.raises(ClientError, match="404"):  # nothing was uploaded
        aws["s3"].head_object(Bucket="up-dry", Key="clustertools/study/bootstrap/README.md")
    assert result.findings[-1] == lu.Finding(
        "warning", "pcluster:AsyncTimedUrlValidator", "Unable to access the url s3://x"
    )


def test_preflight_errors_stop_before_any_create(aws, transport, tmp_path, bootstrap):
    create = transport("create_cluster", AssertionError("must not create"))
    with pytest.raises(lu.UpBlocked) as caught:
        bring_up(aws, StateDir(tmp_path / "state"), bootstrap, project_=project(aws, bucket="up-missing"))
    assert create.calls == [] and caught.value.message.startswith("pre-flight: 1 error(s)")
    assert ("error", "output bucket up-missing does not exist") in [(f.level, f.message) for f in caught.value.findings]


def test_a_missing_bootstrap_script_blocks_a_real_create(aws, transport, tmp_path):
    transport("create_cluster", AssertionError("must not create"))
    with pytest.raises(lu.UpBlocked) as caught:
        bring_up(aws, StateDir(tmp_path / "state"), tmp_path)  # no on-node-configured.sh there
    assert [f.check for f in caught.value.findings if f.level == "error"] == ["bootstrap"]


def test_without_an_address_up_stops_and_never_opens_ssh_to_the_world(aws, transport, tmp_path, bootstrap):
    transport("create_cluster", AssertionError("must not create"))
    with pytest.raises(ConfigError, match="your public address cannot be learned here") as caught:
        bring_up(aws, StateDir(tmp_path / "state"), bootstrap, allowed_ip=None)
    assert "--allowed-ip YOUR.IP/32" in caught.value.hint
