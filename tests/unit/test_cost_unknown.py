"""`submit` on a ParallelCluster cluster whose queue runs an instance type the shipped price table lacks:
AWS is asked (stubbed at our transport boundary: ``make_price_clients`` hands out fake boto3 clients), and
when AWS cannot answer either, submit says "cost unknown" and why, and goes on under the usual --yes rule.
The submission itself (SSH to a head node) is replaced by a stub: here only what happens before it counts."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from click.testing import CliRunner

from cluster_tools.cli.app import cli
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.cost.pricing import load_price_table
from cluster_tools.services.project.project_init import render_project_file
from cluster_tools.services.runs.run_cost import CostUnknown, needs_confirmation
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.aws_prices import PriceClients

MISSING = "c8g.xlarge"  # a real type the table does not list


class _Pages:
    def __init__(self, pages):
        self._pages = pages

    def paginate(self, **_kwargs):
        return iter(self._pages)


class FakePricing:
    def __init__(self, hourly: str | None):
        self.hourly = hourly

    def get_paginator(self, name):
        assert name == "get_products"
        if self.hourly is None:
            raise NoCredentialsError()
        product = {
            "product": {
                "sku": "SKU1",
                "attributes": {
                    "instanceType": MISSING,
                    "regionCode": "us-east-1",
                    "operation": "RunInstances",
                    "marketoption": "OnDemand",
                },
            },
            "terms": {
                "OnDemand": {
                    "SKU1.T": {"priceDimensions": {"SKU1.T.D": {"unit": "Hrs", "pricePerUnit": {"USD": self.hourly}}}}
                }
            },
        }
        return _Pages([{"PriceList": [json.dumps(product)]}])


class FakeEc2:
    def __init__(self, answers: bool):
        self.answers = answers

    def _refuse(self):
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "Describe")

    def describe_instance_types(self, InstanceTypes):
        if not self.answers:
            self._refuse()
        return {
            "InstanceTypes": [
                {"InstanceType": InstanceTypes[0], "VCpuInfo": {"DefaultVCpus": 4}, "MemoryInfo": {"SizeInMiB": 8192}}
            ]
        }

    def describe_spot_price_history(self, **_kwargs):
        if not self.answers:
            self._refuse()
        when = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        return {
            "SpotPriceHistory": [
                {
                    "AvailabilityZone": zone,
                    "InstanceType": MISSING,
                    "ProductDescription": "Linux/UNIX",
                    "SpotPrice": "0.0500",
                    "Timestamp": when,
                }
                for zone in ("us-east-1a", "us-east-1b")
            ]
        }


@pytest.fixture
def aws(monkeypatch):
    """Switch for what AWS answers: ``aws(hourly="0.1445", ec2=True)``; records every region asked about."""
    from cluster_tools.transport import aws_prices

    asked: list[str] = []

    def answering(hourly: str | None, ec2: bool):
        def make(session, region, *, endpoint_url=None):
            asked.append(region)
            return PriceClients(region=region, pricing=FakePricing(hourly), ec2=FakeEc2(ec2))

        monkeypatch.setattr(aws_prices, "make_price_clients", make)
        return asked

    return answering


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A project whose only queue runs MISSING, a ParallelCluster cluster record, and a stubbed submission."""
    from cluster_tools.services.runs import submit as submit_service

    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "study"
    project.mkdir()
    text = render_project_file("study", "study", "s3://study-out/study")
    (project / "clustertools.yaml").write_text(text.replace("[c6i.xlarge, c5.xlarge]", f"[{MISSING}]"))
    (project / "subjects.txt").write_text("sub-01\nsub-02\nsub-03\n")
    state = tmp_path / "state"
    save_cluster(
        StateDir(state),
        ClusterRecord(
            name="study",
            provider="parallelcluster",
            host="192.0.2.10",
            user="ec2-user",
            known_hosts=tmp_path / "kh",
            region="us-east-1",
        ),
    )
    sent = []

    def fake_submit(state_dir, run, cluster, **_kwargs):
        sent.append(run.run_id)
        return submit_service.SubmitResult(run=run, attempt=1, arrays=((0, "101", 3, True),), resumed=False)

    monkeypatch.setattr(submit_service, "submit_attempt", fake_submit)
    monkeypatch.chdir(project)

    def submit(*args: str):
        result = CliRunner().invoke(
            cli, ["submit", "subjects.txt", "--command", "true", *args], env={"CLUSTERTOOLS_STATE_DIR": str(state)}
        )
        return result, sent

    return submit


def test_the_table_lacks_the_type_and_aws_cannot_answer_submit_goes_on_with_cost_unknown(study, aws):
    asked = aws(hourly=None, ec2=False)
    result, sent = study("--yes")
    assert result.exit_code == 0, result.output
    assert sent and "run study-" in result.output
    unknown = [line for line in result.output.splitlines() if line.startswith("cost unknown: ")]
    assert unknown == [
        f"cost unknown: {MISSING} is not in the {load_price_table().label}, and no shape of {MISSING} "
        "from EC2 DescribeInstanceTypes (UnauthorizedOperation: not allowed)"
    ]
    assert "estimate:" not in result.output and asked == ["us-east-1"]


def test_an_unknown_cost_cannot_be_shown_under_the_threshold_so_a_script_needs_yes(study, aws):
    aws(hourly=None, ec2=False)
    result, sent = study()
    assert result.exit_code == 1 and sent == []
    assert "cost unknown: " in result.output and "Traceback" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: the cost is unknown, so it cannot be shown to be under cost.confirm_above_usd ($25.00): nothing "
        "was submitted (hint: pass --yes to submit anyway (the note above says why no price was found))"
    )


def test_aws_answers_for_what_the_table_lacks_and_the_estimate_says_so(study, aws):
    aws(hourly="0.1445", ec2=True)
    result, sent = study()  # 3 short subjects: far under the threshold, no --yes needed
    assert result.exit_code == 0 and sent, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note: "))
    assert note.startswith(f"note: {MISSING} is not in the {load_price_table().label}: priced with AWS's figures (")
    assert "EC2 spot price history (median of 2 zones)" in note and "cost unknown" not in result.output
    assert f"on up to 1 {MISSING}" in result.output and "estimate: $" in result.output


def test_an_unknown_cost_always_needs_confirmation_a_known_one_above_the_threshold():
    assert needs_confirmation(CostUnknown("no price"), 1_000_000.0)
    assert not needs_confirmation(None, 0.0)
