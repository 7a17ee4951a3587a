"""cluster_tools.transport.pcluster at its boundary with pcluster.lib.

A real create cannot run here, so pcluster.lib's functions are replaced by fakes that return RECORDED
responses and raise pcluster's REAL exception classes. This boundary is the only place with fakes.

Where the recorded responses come from (aws-parallelcluster 3.16.1, as installed): each dict is what
pcluster.lib returns, i.e. the controller's response model (pcluster/api/models/*_response_content.py,
fields as in pcluster/api/openapi/openapi.yaml) encoded by pcluster/api/encoder.py JSONEncoder through
pcluster/cli/model.py call(): camelCase keys, None fields dropped, times as ``2024-05-01T12:00:00.000Z``.
``test_recorded_responses_match_pcluster_models`` rebuilds them with those classes, so an upgrade of
pcluster that changes a shape fails here first.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from pcluster.api import errors as pc_errors
from pcluster.cli.exceptions import ParameterException

from cluster_tools.errors import TransportError
from cluster_tools.transport import pcluster as pc
from cluster_tools.transport import pcluster_errors

ARN = "arn:aws:cloudformation:us-east-1:123456789012:stack/study/5e3a1c40-07b1-11ef-9a0c-0e2f1b1c7a31"
SUMMARY = {
    "cloudformationStackArn": ARN,
    "clusterName": "study",
    "region": "us-east-1",
    "scheduler": {"type": "slurm"},
    "version": "3.16.1",
}

# controllers/cluster_operations_controller.py create_cluster -> CreateClusterResponseContent(ClusterInfoSummary)
CREATE_RESPONSE = {
    "cluster": {**SUMMARY, "cloudformationStackStatus": "CREATE_IN_PROGRESS", "clusterStatus": "CREATE_IN_PROGRESS"},
    "validationMessages": [
        {
            "level": "WARNING",
            "type": "KeyPairValidator",
            "message": "If you do not specify a key pair, you can't connect to the instance unless you "
            "choose an AMI that is configured to allow users another way to log in",
        }
    ],
}
# delete_cluster -> DeleteClusterResponseContent(ClusterInfoSummary)
DELETE_RESPONSE = {
    "cluster": {**SUMMARY, "cloudformationStackStatus": "DELETE_IN_PROGRESS", "clusterStatus": "DELETE_IN_PROGRESS"}
}
# describe_cluster -> DescribeClusterResponseContent; note cloudFormationStackStatus (capital F) here only
DESCRIBE_COMPLETE = {
    "cloudFormationStackStatus": "CREATE_COMPLETE",
    "cloudformationStackArn": ARN,
    "clusterConfiguration": {
        "url": "https://parallelcluster-0123456789abcdef-v1-do-not-delete.s3.amazonaws.com/"
        "parallelcluster/3.16.1/clusters/study-abc/configs/cluster-config.yaml"
    },
    "clusterName": "study",
    "clusterStatus": "CREATE_COMPLETE",
    "computeFleetStatus": "RUNNING",
    "creationTime": "2024-05-01T12:00:00.000Z",
    "headNode": {
        "instanceId": "i-0a1b2c3d4e5f60718",
        "instanceType": "t3.medium",
        "launchTime": "2024-05-01T12:00:00.000Z",
        "privateIpAddress": "10.0.1.25",
        "publicIpAddress": "54.210.7.9",
        "state": "running",
    },
    "lastUpdatedTime": "2024-05-01T12:14:31.000Z",
    "region": "us-east-1",
    "scheduler": {"type": "slurm"},
    "tags": [{"key": "parallelcluster:version", "value": "3.16.1"}, {"key": "project", "value": "study"}],
    "version": "3.16.1",
}
# A failed create: failures from models/cluster_resources.py get_cluster_creation_failure(); no headNode
# (describe_cluster logs the ClusterActionError and leaves it out) and the config URL NOT_AVAILABLE.
DESCRIBE_FAILED = {
    "cloudFormationStackStatus": "ROLLBACK_IN_PROGRESS",
    "cloudformationStackArn": ARN,
    "clusterConfiguration": {"url": "NOT_AVAILABLE"},
    "clusterName": "study",
    "clusterStatus": "CREATE_FAILED",
    "computeFleetStatus": "UNKNOWN",
    "creationTime": "2024-05-01T12:00:00.000Z",
    "failures": [
        {
            "failureCode": "OnNodeConfiguredExecutionFailure",
            "failureReason": "Failed to execute OnNodeConfigured script.",
        }
    ],
    "lastUpdatedTime": "2024-05-01T12:14:31.000Z",
    "region": "us-east-1",
    "scheduler": {"type": "slurm"},
    "tags": [{"key": "parallelcluster:version", "value": "3.16.1"}],
    "version": "3.16.1",
}
# list_clusters -> ListClustersResponseContent, first page of two (nextToken)
LIST_PAGE_1 = {
    "clusters": [{**SUMMARY, "cloudformationStackStatus": "CREATE_COMPLETE", "clusterStatus": "CREATE_COMPLETE"}],
    "nextToken": "eyJwYWdlIjogMn0=",
}
LIST_PAGE_2 = {
    "clusters": [
        {
            **SUMMARY,
            "clusterName": "other",
            "cloudformationStackArn": ARN.replace("study", "other"),
            "cloudformationStackStatus": "UPDATE_COMPLETE",
            "clusterStatus": "UPDATE_COMPLETE",
        }
    ]
}
# controllers/cluster_instances_controller.py describe_cluster_instances -> DescribeClusterInstancesResponseContent
INSTANCES_PAGE_1 = {
    "instances": [
        {
            "instanceId": "i-0a1b2c3d4e5f60718",
            "instanceType": "t3.medium",
            "launchTime": "2024-05-01T12:00:00.000Z",
            "nodeType": "HeadNode",
            "privateIpAddress": "10.0.1.25",
            "publicIpAddress": "54.210.7.9",
            "state": "running",
        }
    ],
    "nextToken": "tok",
}
INSTANCES_PAGE_2 = {
    "instances": [
        {
            "instanceId": "i-0fedcba9876543210",
            "instanceType": "c6i.xlarge",
            "launchTime": "2024-05-01T12:14:31.000Z",
            "nodeType": "ComputeNode",
            "privateIpAddress": "10.0.1.77",
            "queueName": "spot",
            "state": "pending",
        }
    ],
}
# controllers/cluster_compute_fleet_controller.py update_compute_fleet -> UpdateComputeFleetResponseContent
FLEET_RESPONSE = {"lastStatusUpdatedTime": "2024-05-01T12:14:31.000Z", "status": "STOP_REQUESTED"}
# controllers/cluster_logs_controller.py get_cluster_log_events -> GetClusterLogEventsResponseContent
LOG_RESPONSE = {
    "events": [
        {
            "message": "2024-05-01 12:10:02,114 - [slurm_plugin.clustermgtd:_maintain_nodes] - INFO - "
            "Performing node maintenance",
            "timestamp": "2024-05-01T12:14:31.000Z",
        }
    ],
    "nextToken": "f/38237411",
    "prevToken": "b/38237410",
}
# controllers/cluster_logs_controller.py get_cluster_stack_events -> GetClusterStackEventsResponseContent
# (newest first, as CloudFormation sends them)
STACK_EVENTS_PAGE = {
    "events": [
        {
            "eventId": "HeadNode-CREATE_FAILED-2024-05-01T12:09:40.000Z",
            "logicalResourceId": "HeadNode",
            "physicalResourceId": "i-0a1b2c3d4e5f60718",
            "resourceStatus": "CREATE_FAILED",
            "resourceStatusReason": "Failed to receive 1 resource signal(s)\nwithin the specified duration",
            "resourceType": "AWS::EC2::Instance",
            "stackId": ARN,
            "stackName": "study",
            "timestamp": "2024-05-01T12:09:40.000Z",
        },
        {
            "eventId": "HeadNode-CREATE_IN_PROGRESS-2024-05-01T12:02:11.000Z",
            "logicalResourceId": "HeadNode",
            "physicalResourceId": "",
            "resourceStatus": "CREATE_IN_PROGRESS",
            "resourceType": "AWS::EC2::Instance",
            "stackId": ARN,
            "stackName": "study",
            "timestamp": "2024-05-01T12:02:11.000Z",
        },
    ],
    "nextToken": "eyJwYWdlIjogMn0=",
}
# controllers/cluster_logs_controller.py list_cluster_log_streams -> ListClusterLogStreamsResponseContent
LOG_STREAMS_PAGE = {
    "logStreams": [
        {
            "creationTime": "2024-05-01T12:14:31.000Z",
            "firstEventTimestamp": "2024-05-01T12:14:31.000Z",
            "lastEventTimestamp": "2024-05-01T12:19:02.000Z",
            "lastIngestionTime": "2024-05-01T12:19:02.000Z",
            "logStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/parallelcluster/study-202405011200:"
            "log-stream:ip-10-0-1-77.i-0fedcba9876543210.cloud-init-output",
            "logStreamName": "ip-10-0-1-77.i-0fedcba9876543210.cloud-init-output",
            "uploadSequenceToken": "49039859",
        }
    ],
}
# The error a missing cluster gets (controllers/common.py validate_cluster)
NOT_FOUND = "Cluster 'study' does not exist or belongs to an incompatible ParallelCluster major version."


class Fake:
    """Stands in for one pcluster.lib function: records its keyword arguments, answers in turn."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer() if callable(answer) else answer


@pytest.fixture
def lib(monkeypatch):
    import pcluster.lib

    def install(name: str, *answers) -> Fake:
        fake = Fake(*answers)
        monkeypatch.setattr(pcluster.lib, name, fake)
        return fake

    return install


T0 = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


def test_describe_a_running_cluster(lib):
    fake = lib("describe_cluster", DESCRIBE_COMPLETE)
    info = pc.describe_cluster("study", region="us-east-1")
    assert fake.calls == [{"cluster_name": "study", "region": "us-east-1"}]
    assert (info.name, info.status, info.stack_status, info.scheduler, info.version) == (
        "study",
        "CREATE_COMPLETE",
        "CREATE_COMPLETE",
        "slurm",
        "3.16.1",
    )
    assert (info.head_node_public_ip, info.head_node_private_ip, info.head_node_instance_id) == (
        "54.210.7.9",
        "10.0.1.25",
        "i-0a1b2c3d4e5f60718",
    )
    assert info.head_node.state == "running" and info.head_node.launch_time == T0
    assert info.compute_fleet_status == "RUNNING" and info.failure_reason is None
    assert info.creation_time == T0 and info.last_updated_time == T0.replace(minute=14, second=31)
    assert info.tags == {"parallelcluster:version": "3.16.1", "project": "study"}
    assert info.config_url.startswith("https://") and info.stack_arn == ARN


def test_describe_a_failed_create_names_the_reason(lib):
    lib("describe_cluster", DESCRIBE_FAILED)
    info = pc.describe_cluster("study", region="us-east-1")
    assert info.status == "CREATE_FAILED" and info.stack_status == "ROLLBACK_IN_PROGRESS"
    assert info.head_node is None and info.head_node_public_ip is None
    assert info.failures == (("OnNodeConfiguredExecutionFailure", "Failed to execute OnNodeConfigured script."),)
    assert info.failure_reason == "Failed to execute OnNodeConfigured script."


def test_a_missing_cluster_is_one_line_of_our_own(lib):
    lib("describe_cluster", pc_errors.NotFoundException(NOT_FOUND))
    with pytest.raises(pc.PclusterNotFound) as caught:
        pc.describe_cluster("study", region="us-east-1")
    err = caught.value
    assert isinstance(err, TransportError) and err.status == 404 and err.command == "pcluster.lib.describe_cluster"
    assert err.one_line() == (
        f"describe cluster study: {NOT_FOUND} (hint: check the name and the region (clustertools list))"
    )
    assert err.__cause__ is None and err.__suppress_context__  # no pcluster traceback chained on


def test_create_sends_our_exact_text_and_returns_the_summary(lib, tmp_path):
    seen = {}

    def answer_reading_the_file():
        path = Path(fake.calls[-1]["cluster_configuration"])
        seen["text"], seen["mode"] = path.read_text(), path.stat().st_mode & 0o777
        return CREATE_RESPONSE

    fake = lib("create_cluster", answer_reading_the_file)
    text = "# rendered by clustertools\nRegion: us-east-1\n"
    result = pc.create_cluster(
        "study", text, region="us-east-1", suppress_validators=["KeyPairValidator", "type:AmiOsCompatibleValidator"]
    )
    call = fake.calls[0]
    assert seen == {"text": text, "mode": 0o600}
    assert not Path(call.pop("cluster_configuration")).exists()  # the temporary file is gone
    assert call == {
        "cluster_name": "study",
        "region": "us-east-1",
        "dryrun": False,
        "rollback_on_failure": True,
        "suppress_validators": ["type:KeyPairValidator", "type:AmiOsCompatibleValidator"],
    }
    assert result.dry_run is False and result.cluster.status == "CREATE_IN_PROGRESS"
    assert result.cluster.stack_arn == ARN and result.cluster.scheduler == "slurm"
    assert [m.type for m in result.validation_messages] == ["KeyPairValidator"]


def test_a_passing_dry_run_is_a_result_not_an_error(lib):
    # controllers create_cluster raises DryrunOperationException when validation passes (api/errors.py, 412)
    from pcluster.api.models import ConfigValidationMessage

    warning = ConfigValidationMessage(
        level="WARNING", type="AsyncTimedUrlValidator", message="Failed when accessing object 'x.sh' from bucket 'b'."
    )
    fake = lib("create_cluster", pc_errors.DryrunOperationException(validation_messages=[warning]))
    result = pc.create_cluster(
        "study", "Region: us-east-1\n", region="us-east-1", dry_run=True, rollback_on_failure=False
    )
    assert fake.calls[0]["dryrun"] is True and fake.calls[0]["rollback_on_failure"] is False
    assert "suppress_validators" not in fake.calls[0]
    assert result == pc.CreateResult(
        name="study",
        dry_run=True,
        cluster=None,
        validation_messages=(
            pc.ValidationMessage(
                "WARNING", "AsyncTimedUrlValidator", "Failed when accessing object 'x.sh' from bucket 'b'."
            ),
        ),
    )


def test_a_rejected_config_lists_each_failing_validator(lib):
    from pcluster.api.models import ConfigValidationMessage, CreateClusterBadRequestExceptionResponseContent

    # Recorded from the dry run against moto without the launch-template validators suppressed.
    errors = [
        ConfigValidationMessage(
            level="ERROR",
            type="HeadNodeLaunchTemplateValidator",
            message="Unable to validate configuration parameters for instance type t3.medium. "
            "Please double check your cluster configuration. The request must "
            "contain the parameter ebs",
        ),
        ConfigValidationMessage(level="WARNING", type="AsyncTimedUrlValidator", message="not found\nin 'b'"),
    ]
    lib(
        "create_cluster",
        pc_errors.CreateClusterBadRequestException(
            CreateClusterBadRequestExceptionResponseContent(
                message="Invalid cluster configuration.", configuration_validation_errors=errors
            )
        ),
    )
    with pytest.raises(pc.PclusterConfigRejected) as caught:
        pc.create_cluster("study", "Region: us-east-1\n", region="us-east-1", dry_run=True)
    line = caught.value.one_line()
    assert line.startswith(
        "create cluster study: Invalid cluster configuration: HeadNodeLaunchTemplateValidator: "
        "Unable to validate configuration parameters for instance type t3.medium."
    )
    assert "AsyncTimedUrlValidator" not in line and "\n" not in line and "(hint: fix the config" in line
    assert [m.level for m in caught.value.validation_messages] == ["ERROR", "WARNING"]
    assert caught.value.validation_messages[1].message == "not found in 'b'"


def test_a_config_error_without_validator_list(lib):
    from pcluster.api.models import CreateClusterBadRequestExceptionResponseContent

    # What the dry run against moto said before an official AMI was registered there.
    lib(
        "create_cluster",
        pc_errors.CreateClusterBadRequestException(
            CreateClusterBadRequestExceptionResponseContent(
                message="Invalid cluster configuration: Cannot find official ParallelCluster AMI"
            )
        ),
    )
    with pytest.raises(pc.PclusterConfigRejected) as caught:
        pc.create_cluster("study", "Region: us-east-1\n", region="us-east-1", dry_run=True)
    assert (
        caught.value.message
        == "create cluster study: Invalid cluster configuration: Cannot find official ParallelCluster AMI"
    )


def test_create_of_an_existing_cluster_is_recognised(lib):
    # models/cluster.py _validate_no_existing_stack -> BadRequestClusterActionError -> BadRequestException
    lib("create_cluster", pc_errors.BadRequestException("Cluster study already exists."))
    with pytest.raises(pc.PclusterClusterExists) as caught:
        pc.create_cluster("study", "Region: us-east-1\n", region="us-east-1")
    assert caught.value.message == "create cluster study: Bad Request: Cluster study already exists."
    assert caught.value.status == 400


def test_delete_returns_the_summary(lib):
    fake = lib("delete_cluster", DELETE_RESPONSE)
    summary = pc.delete_cluster("study", region="us-east-1")
    assert fake.calls == [{"cluster_name": "study", "region": "us-east-1"}]
    assert summary.status == "DELETE_IN_PROGRESS" and summary.name == "study"


def test_list_follows_every_page(lib):
    fake = lib("list_clusters", LIST_PAGE_1, LIST_PAGE_2)
    clusters = pc.list_clusters(region="us-east-1")
    assert [(c.name, c.status) for c in clusters] == [("study", "CREATE_COMPLETE"), ("other", "UPDATE_COMPLETE")]
    assert fake.calls == [{"region": "us-east-1"}, {"region": "us-east-1", "next_token": "eyJwYWdlIjogMn0="}]


def test_list_without_region_leaves_it_to_the_boto3_chain(lib):
    fake = lib("list_clusters", {"clusters": []})
    assert pc.list_clusters() == [] and fake.calls == [{}]


def test_instances_follow_every_page(lib):
    fake = lib("describe_cluster_instances", INSTANCES_PAGE_1, INSTANCES_PAGE_2)
    found = pc.describe_cluster_instances("study", region="us-east-1", node_type="ComputeNode")
    assert [(i.instance_id, i.node_type, i.queue_name, i.public_ip, i.state) for i in found] == [
        ("i-0a1b2c3d4e5f60718", "HeadNode", None, "54.210.7.9", "running"),
        ("i-0fedcba9876543210", "ComputeNode", "spot", None, "pending"),
    ]
    assert fake.calls[1] == {
        "cluster_name": "study",
        "region": "us-east-1",
        "node_type": "ComputeNode",
        "next_token": "tok",
    }


def test_update_compute_fleet(lib):
    fake = lib("update_compute_fleet", FLEET_RESPONSE)
    fleet = pc.update_compute_fleet("study", "STOP_REQUESTED", region="us-east-1")
    assert fake.calls == [{"cluster_name": "study", "status": "STOP_REQUESTED", "region": "us-east-1"}]
    assert fleet.status == "STOP_REQUESTED" and fleet.last_status_updated_time == T0.replace(minute=14, second=31)
    with pytest.raises(ValueError):
        pc.update_compute_fleet("study", "PAUSE", region="us-east-1")  # type: ignore[arg-type]


def test_log_events(lib):
    fake = lib("get_cluster_log_events", LOG_RESPONSE)
    events = pc.get_cluster_log_events(
        "study", "ip-10-0-1-25.i-0a1b2c3d4e5f60718.clustermgtd", region="us-east-1", limit=5, start_from_head=True
    )
    assert fake.calls == [
        {
            "cluster_name": "study",
            "log_stream_name": "ip-10-0-1-25.i-0a1b2c3d4e5f60718.clustermgtd",
            "region": "us-east-1",
            "limit": 5,
            "start_from_head": True,
        }
    ]
    assert events[0].message.endswith("Performing node maintenance") and events[0].timestamp.minute == 14


def test_log_streams_of_one_host(lib):
    fake = lib("list_cluster_log_streams", LOG_STREAMS_PAGE)
    streams = pc.list_cluster_log_streams("study", region="us-east-1", private_dns_name="ip-10-0-1-77")
    assert fake.calls == [
        {"cluster_name": "study", "region": "us-east-1", "filters": ["Name=private-dns-name,Values=ip-10-0-1-77"]}
    ]
    assert streams == [
        pc.LogStream(
            "ip-10-0-1-77.i-0fedcba9876543210.cloud-init-output",
            datetime.datetime(2024, 5, 1, 12, 19, 2, tzinfo=datetime.UTC),
        )
    ]


def test_stack_events_one_page_newest_first(lib):
    fake = lib("get_cluster_stack_events", STACK_EVENTS_PAGE)
    events, token = pc.get_cluster_stack_events("study", region="us-east-1")
    assert fake.calls == [{"cluster_name": "study", "region": "us-east-1"}]  # None arguments are left out
    assert token == "eyJwYWdlIjogMn0="
    assert [(e.logical_id, e.status) for e in events] == [
        ("HeadNode", "CREATE_FAILED"),
        ("HeadNode", "CREATE_IN_PROGRESS"),
    ]
    assert events[0].reason == "Failed to receive 1 resource signal(s) within the specified duration"
    assert (
        events[0].resource_type == "AWS::EC2::Instance" and events[0].timestamp.minute == 9 and events[1].reason == ""
    )


@pytest.mark.parametrize(
    "exc, expected, hint",
    [
        (pc_errors.LimitExceededException("Rate exceeded"), "list clusters: Rate exceeded", "AWS throttled"),
        # controllers/common.py convert_errors folds any other exception into InternalServiceException(str(e))
        (
            pc_errors.InternalServiceException("Unable to locate credentials"),
            "list clusters: Unable to locate credentials",
            "configure AWS credentials",
        ),
        (
            pc_errors.BadRequestException("invalid or unsupported region 'xx-nowhere-1'"),
            "list clusters: Bad Request: invalid or unsupported region 'xx-nowhere-1'",
            "pass --region",
        ),
        (
            pc_errors.ConflictException("Cluster study is in DELETE_IN_PROGRESS"),
            "list clusters: Cluster study is in DELETE_IN_PROGRESS",
            "wait for the cluster's current operation",
        ),
    ],
)
def test_pcluster_errors_become_one_line_with_a_hint(lib, exc, expected, hint):
    lib("list_clusters", exc)
    with pytest.raises(pc.PclusterError) as caught:
        pc.list_clusters(region="us-east-1")
    assert caught.value.message == expected and hint in caught.value.hint and exc.code == caught.value.status


def test_botocore_and_unexpected_errors_are_translated_too(lib):
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    lib("describe_cluster", NoCredentialsError())
    with pytest.raises(pc.PclusterError) as caught:
        pc.describe_cluster("study", region="us-east-1")
    assert caught.value.one_line() == (
        "describe cluster study: Unable to locate credentials "
        "(hint: configure AWS credentials: `aws configure`, or set AWS_PROFILE)"
    )
    lib("describe_cluster", EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/"))
    with pytest.raises(pc.PclusterError, match="cannot reach AWS"):
        pc.describe_cluster("study", region="us-east-1")
    lib("describe_cluster", KeyError("clusterName"))
    with pytest.raises(pc.PclusterError) as caught:
        pc.describe_cluster("study", region="us-east-1")
    assert caught.value.message == "describe cluster study: unexpected KeyError from ParallelCluster: 'clusterName'"


def test_a_bad_argument_is_refused_by_the_real_library_in_one_line():
    # No fake: pcluster.lib checks the name against its API model before any AWS call (ParameterException).
    with pytest.raises(pc.PclusterError) as caught:
        pc.describe_cluster("bad name!", region="us-east-1")
    assert caught.value.message == (
        "describe cluster bad name!: Bad Request: 'bad name!' does not match '^[a-zA-Z][a-zA-Z0-9-]+$' - 'cluster-name'"
    )
    with pytest.raises(pc.PclusterError, match="Bad Request: oops"):
        raise pcluster_errors.cli_error(ParameterException({"message": "Bad Request: oops"}), "x")


@pytest.mark.parametrize("before", [None, "ap-south-1"])
def test_the_region_pcluster_sets_is_put_back(lib, monkeypatch, before):
    if before is None:
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    else:
        monkeypatch.setenv("AWS_DEFAULT_REGION", before)

    def like_pcluster():  # controllers/common.py _set_region writes the variable and leaves it
        os.environ["AWS_DEFAULT_REGION"] = "eu-west-1"
        return DESCRIBE_COMPLETE

    lib("describe_cluster", like_pcluster)
    pc.describe_cluster("study", region="eu-west-1")
    assert os.environ.get("AWS_DEFAULT_REGION") == before
    lib("describe_cluster", pc_errors.NotFoundException(NOT_FOUND))
    with pytest.raises(pc.PclusterNotFound):
        pc.describe_cluster("study", region="eu-west-1")
    assert os.environ.get("AWS_DEFAULT_REGION") == before


def test_recorded_responses_match_pcluster_models():
    """Rebuild the recorded responses with pcluster's own model classes and encoder."""
    import json

    from pcluster.api import encoder
    from pcluster.api.models import (
        ClusterConfigurationStructure,
        ClusterInfoSummary,
        ClusterInstance,
        DescribeClusterInstancesResponseContent,
        DescribeClusterResponseContent,
        EC2Instance,
        Failure,
        InstanceState,
        ListClustersResponseContent,
        Scheduler,
        Tag,
        UpdateComputeFleetResponseContent,
    )

    def encoded(model):
        return json.loads(encoder.JSONEncoder().encode(model))

    later = T0.replace(minute=14, second=31)
    failed = DescribeClusterResponseContent(
        creation_time=T0,
        version="3.16.1",
        cluster_configuration=ClusterConfigurationStructure(url="NOT_AVAILABLE"),
        tags=[Tag(key="parallelcluster:version", value="3.16.1")],
        cloud_formation_stack_status="ROLLBACK_IN_PROGRESS",
        cluster_name="study",
        compute_fleet_status="UNKNOWN",
        cloudformation_stack_arn=ARN,
        last_updated_time=later,
        region="us-east-1",
        cluster_status="CREATE_FAILED",
        scheduler=Scheduler(type="slurm"),
        failures=[
            Failure(
                failure_code="OnNodeConfiguredExecutionFailure",
                failure_reason="Failed to execute OnNodeConfigured script.",
            )
        ],
    )
    assert encoded(failed) == DESCRIBE_FAILED
    complete = DescribeClusterResponseContent(
        creation_time=T0,
        version="3.16.1",
        cluster_configuration=ClusterConfigurationStructure(url=DESCRIBE_COMPLETE["clusterConfiguration"]["url"]),
        tags=[Tag(key="parallelcluster:version", value="3.16.1"), Tag(key="project", value="study")],
        cloud_formation_stack_status="CREATE_COMPLETE",
        cluster_name="study",
        compute_fleet_status="RUNNING",
        cloudformation_stack_arn=ARN,
        last_updated_time=later,
        region="us-east-1",
        cluster_status="CREATE_COMPLETE",
        scheduler=Scheduler(type="slurm"),
    )
    complete.head_node = EC2Instance(
        instance_id="i-0a1b2c3d4e5f60718",
        launch_time=T0,
        public_ip_address="54.210.7.9",
        instance_type="t3.medium",
        state=InstanceState.from_dict("running"),
        private_ip_address="10.0.1.25",
    )
    assert encoded(complete) == DESCRIBE_COMPLETE
    summary = ClusterInfoSummary(
        cluster_name="study",
        cloudformation_stack_status="CREATE_COMPLETE",
        cloudformation_stack_arn=ARN,
        region="us-east-1",
        version="3.16.1",
        cluster_status="CREATE_COMPLETE",
        scheduler=Scheduler(type="slurm"),
    )
    assert encoded(ListClustersResponseContent(clusters=[summary], next_token="eyJwYWdlIjogMn0=")) == LIST_PAGE_1
    compute = ClusterInstance(
        instance_id="i-0fedcba9876543210",
        instance_type="c6i.xlarge",
        launch_time=later,
        private_ip_address="10.0.1.77",
        state="pending",
        node_type="ComputeNode",
        queue_name="spot",
    )
    assert encoded(DescribeClusterInstancesResponseContent(instances=[compute])) == INSTANCES_PAGE_2
    assert (
        encoded(UpdateComputeFleetResponseContent(status="STOP_REQUESTED", last_status_updated_time=later))
        == FLEET_RESPONSE
    )
    from pcluster.api.models import GetClusterStackEventsResponseContent, StackEvent

    def event(status, at, reason=None, physical=""):
        return StackEvent(
            event_id=f"HeadNode-{status}-{at.isoformat()[:19]}.000Z",
            logical_resource_id="HeadNode",
            physical_resource_id=physical,
            resource_status=status,
            resource_status_reason=reason,
            resource_type="AWS::EC2::Instance",
            stack_id=ARN,
            stack_name="study",
            timestamp=at,
        )

    page = GetClusterStackEventsResponseContent(
        next_token="eyJwYWdlIjogMn0=",
        events=[
            event(
                "CREATE_FAILED",
                T0.replace(minute=9, second=40),
                "Failed to receive 1 resource signal(s)\nwithin the specified duration",
                "i-0a1b2c3d4e5f60718",
            ),
            event("CREATE_IN_PROGRESS", T0.replace(minute=2, second=11)),
        ],
    )
    assert encoded(page) == STACK_EVENTS_PAGE
    from pcluster.api.models import ListClusterLogStreamsResponseContent, LogStream

    stream = LogStream(
        creation_time=later,
        first_event_timestamp=later,
        last_event_timestamp=T0.replace(minute=19, second=2),
        last_ingestion_time=T0.replace(minute=19, second=2),
        log_stream_arn=LOG_STREAMS_PAGE["logStreams"][0]["logStreamArn"],
        log_stream_name="ip-10-0-1-77.i-0fedcba9876543210.cloud-init-output",
        upload_sequence_token="49039859",
    )
    assert encoded(ListClusterLogStreamsResponseContent(log_streams=[stream])) == LOG_STREAMS_PAGE


# controllers/cluster_operations_controller.py update_cluster -> UpdateClusterResponseContent (ClusterInfoSummary,
# changeSet of Change{parameter, currentValue, requestedValue} as _analyze_changes builds it)
UPDATE_RESPONSE = {
    "cluster": {**SUMMARY, "cloudformationStackStatus": "UPDATE_IN_PROGRESS", "clusterStatus": "UPDATE_IN_PROGRESS"},
    "changeSet": [
        {
            "parameter": "Scheduling.SlurmQueues[spot].ComputeResources[spot].MaxCount",
            "currentValue": "10",
            "requestedValue": "20",
        }
    ],
}


def test_update_sends_our_exact_text_and_returns_the_change_set(lib):
    seen = {}

    def answer():  # the file exists while pcluster reads it
        seen["text"] = Path(fake.calls[-1]["cluster_configuration"]).read_text()
        return UPDATE_RESPONSE

    fake = lib("update_cluster", answer)
    result = pc.update_cluster("study", "# ours\nRegion: us-east-1\n", region="us-east-1")
    call = fake.calls[0]
    assert (call["cluster_name"], call["dryrun"], call["force_update"], call["region"]) == (
        "study",
        False,
        False,
        "us-east-1",
    )
    assert seen["text"] == "# ours\nRegion: us-east-1\n" and not Path(call["cluster_configuration"]).exists()
    assert result.cluster.status == "UPDATE_IN_PROGRESS" and not result.dry_run
    assert result.change_set == (
        pc.ChangeRequest("Scheduling.SlurmQueues[spot].ComputeResources[spot].MaxCount", "10", "20"),
    )


def test_an_update_dry_run_that_passes_returns_its_change_set(lib):
    from pcluster.api.models import Change

    change = Change(parameter="Scheduling.SlurmSettings.ScaledownIdletime", current_value="10", requested_value="20")
    lib("update_cluster", pc_errors.DryrunOperationException(change_set=[change]))
    result = pc.update_cluster("study", "Region: us-east-1\n", region="us-east-1", dry_run=True)
    assert result.dry_run and result.cluster is None
    assert result.change_set == (pc.ChangeRequest("Scheduling.SlurmSettings.ScaledownIdletime", "10", "20"),)


def test_an_update_parallelcluster_refuses_names_each_refused_change(lib):
    # _handle_cluster_update_error: the change set, and an UpdateError per change its policy refused
    from pcluster.api.models import Change, UpdateClusterBadRequestExceptionResponseContent, UpdateError

    path = "Scheduling.SlurmQueues[spot].ComputeResources[spot].Instances"
    content = UpdateClusterBadRequestExceptionResponseContent(
        message="Update failure",
        change_set=[Change(parameter=path, current_value="{'InstanceType': 'c5.xlarge'}", requested_value="-")],
        update_validation_errors=[
            UpdateError(
                parameter=path,
                current_value="{'InstanceType': 'c5.xlarge'}",
                requested_value="-",
                message="All compute nodes must be stopped. Stop "
                "the compute fleet with the pcluster update-compute-fleet command",
            )
        ],
    )
    lib("update_cluster", pc_errors.UpdateClusterBadRequestException(content))
    with pytest.raises(pc.PclusterError) as caught:
        pc.update_cluster("study", "Region: us-east-1\n", region="us-east-1")
    err = caught.value
    assert err.status == 400 and err.change_set[0].refused.startswith("All compute nodes must be stopped.")
    assert err.one_line() == (
        f"update cluster study: Update failure: {path}: All compute nodes must be stopped. Stop the "
        "compute fleet with the pcluster update-compute-fleet command (hint: see `clustertools "
        "update --dry-run` for what each change needs)"
    )


def test_the_running_config_comes_from_the_url_describe_gives(lib, monkeypatch):
    import io
    import urllib.request

    lib("describe_cluster", DESCRIBE_COMPLETE)
    opened = []

    def urlopen(url, timeout):
        opened.append((url, timeout))
        return io.BytesIO(b"Region: us-east-1\n")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert pc.cluster_config_text("study", region="us-east-1") == "Region: us-east-1\n"
    assert opened == [(DESCRIBE_COMPLETE["clusterConfiguration"]["url"], 30)]
    lib("describe_cluster", DESCRIBE_FAILED)
    with pytest.raises(pc.PclusterError, match=r"ParallelCluster has no config for study \(NOT_AVAILABLE\)"):
        pc.cluster_config_text("study", region="us-east-1")
