"""The head node's host keys read from its EC2 console output (services/aws/head_console.py), with EC2 stubbed
at our boundary by botocore's Stubber on a real boto3 client: the request is checked against EC2's own model
and the parameters we send (``Latest=True``), and the answer goes through boto3's own base64 decoding.

The console texts are the recorded ones of tests/golden/console/; moto cannot print cloud-init's key blocks.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from cluster_tools.services.aws import lifecycle_up as lu
from cluster_tools.services.aws.head_console import ConsoleWait, read_console_host_keys
from cluster_tools.store.state_dir import StateDir
from tests.unit.pcluster_records import COMPLETE, HEAD, REGION

CONSOLE = Path(__file__).parents[1] / "golden" / "console"
KEYS = (CONSOLE / "al2023.txt").read_text()
FINGERPRINTS_ONLY = (CONSOLE / "ubuntu-fingerprints-only.txt").read_text()
BOOTING = "[    0.000000] Linux version 6.1.84-99.169.amzn2023.x86_64\ncloud-init[1834]: Cloud-init v. 22.2.2 running\n"
LATEST = {"InstanceId": HEAD.instance_id, "Latest": True}


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def answer(text: str) -> dict:
    """What EC2 sends: the console text in base64 (boto3 decodes it)."""
    return {"InstanceId": HEAD.instance_id, "Output": base64.b64encode(text.encode()).decode()}


class Waiting:
    def __init__(self):
        self.slept, self.progress = [], []

    def wait(self, **kwargs) -> ConsoleWait:
        return ConsoleWait(sleep=self.slept.append, on_progress=self.progress.append, **kwargs)


def test_latest_output_is_asked_for_again_until_cloud_init_prints_the_keys_which_are_then_pinned(ec2, tmp_path):
    client, stubber = ec2
    for text in ("", BOOTING, KEYS):  # the console lags the boot; the keys come at the end of the bootstrap
        stubber.add_response("get_console_output", answer(text), LATEST)
    waiting, state = Waiting(), StateDir(tmp_path / "state")
    result = lu.UpResult("study", REGION, "created", [], "", cluster=COMPLETE)
    spec = SimpleNamespace(os="alinux2023", key_name=None)
    lu._record(result, state, spec, None, tmp_path, None, fresh=True, ec2=client, console_wait=waiting.wait())
    assert result.host_key_source == "console output"
    assert sorted(line.split()[1] for line in state.known_hosts("study").read_text().splitlines()) == [
        "ecdsa-sha2-nistp256",
        "ssh-ed25519",
    ]
    assert waiting.slept == [15.0, 15.0]
    assert waiting.progress == [
        f"waiting up to 5 min for the console output of {HEAD.instance_id} to show its SSH "
        "host keys (cloud-init prints them at the end of the bootstrap)"
    ]
    assert not any("first use" in n for n in result.notes)


def test_keys_never_printed_fall_back_to_first_use_and_say_so(ec2):
    client, stubber = ec2
    for _ in range(5):  # the first read, then one every 15 s for a minute
        stubber.add_response("get_console_output", answer(BOOTING), LATEST)
    waiting, notes = Waiting(), []
    found = read_console_host_keys(client, HEAD.instance_id, notes, waiting.wait(wait_seconds=60))
    assert not found.found and waiting.slept == [15.0] * 4 and len(waiting.progress) == 1
    assert notes == [
        f"the console output of {HEAD.instance_id} showed no SSH host keys in 1 min: host key trusted "
        "on first use, and pinned then"
    ]


def test_fingerprints_alone_are_taken_at_once(ec2):
    """Ubuntu prints no keys block: waiting for one would only delay every `up`."""
    client, stubber = ec2
    stubber.add_response("get_console_output", answer(FINGERPRINTS_ONLY), LATEST)
    waiting, notes = Waiting(), []
    found = read_console_host_keys(client, HEAD.instance_id, notes, waiting.wait())
    assert found.fingerprints and not found.keys and waiting.slept == [] and notes == []


def test_a_keys_block_still_being_printed_is_read_again(ec2):
    client, stubber = ec2
    half = KEYS[: KEYS.index("ssh-ed25519")]  # fingerprints done, keys block begun
    stubber.add_response("get_console_output", answer(half), LATEST)
    stubber.add_response("get_console_output", answer(KEYS), LATEST)
    waiting = Waiting()
    found = read_console_host_keys(client, HEAD.instance_id, [], waiting.wait())
    assert len(found.keys) == 2 and waiting.slept == [15.0]


def test_an_instance_type_without_latest_output_is_read_buffered(ec2):
    """Latest needs a Nitro instance: on others the buffered output is all there is, read from then on."""
    client, stubber = ec2
    stubber.add_client_error("get_console_output", "UnsupportedOperation", expected_params=LATEST)
    stubber.add_response("get_console_output", answer(BOOTING), {"InstanceId": HEAD.instance_id})
    stubber.add_response("get_console_output", answer(KEYS), {"InstanceId": HEAD.instance_id})
    found = read_console_host_keys(client, HEAD.instance_id, [], Waiting().wait())
    assert len(found.keys) == 2


def test_a_console_that_cannot_be_read_falls_back_at_once_naming_the_error(ec2):
    client, stubber = ec2
    stubber.add_client_error("get_console_output", "UnauthorizedOperation", expected_params=LATEST)
    stubber.add_client_error(
        "get_console_output", "UnauthorizedOperation", expected_params={"InstanceId": HEAD.instance_id}
    )
    waiting, notes = Waiting(), []
    assert not read_console_host_keys(client, HEAD.instance_id, notes, waiting.wait()).found
    assert waiting.slept == [] and notes == [
        f"cannot read the console output of {HEAD.instance_id} (ClientError UnauthorizedOperation): host key trusted "
        "on first use, and pinned then"
    ]
