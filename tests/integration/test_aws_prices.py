"""Live prices against a real endpoint: moto's server on 127.0.0.1 for EC2's DescribeSpotPriceHistory, and a
closed port on 127.0.0.1 for an AWS that cannot be reached. Nothing here leaves this machine.

The AWS Pricing API (GetProducts) cannot be served by moto: it has no ``pricing`` backend and answers 500
(``test_pricing_api_cannot_be_served_by_moto_and_falls_back`` shows it). Its parser is tested in
tests/unit/test_pricing.py over a literal GetProducts answer written from the documented format.
moto answers every spot price as 0.00001 in every zone that offers the type; the figures asserted below are
moto's, the zone count is moto's real offerings list.
"""

from __future__ import annotations

import re
import socket
import time

import boto3
import pytest

from cluster_tools.model.cost.pricing import LivePriceUnavailable, PriceNotFound, hourly_cluster_cost, load_price_table
from cluster_tools.transport.aws_prices import live_instance_shape, live_or_table, live_spot_price, make_price_clients
from tests.moto_aws import moto_server

PLACEHOLDER = {"aws_access_key_id": "placeholder", "aws_secret_access_key": "placeholder"}  # moto takes any key


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def table():
    return load_price_table()


def session(region: str = "us-east-1", **credentials) -> boto3.session.Session:
    return boto3.session.Session(region_name=region, **(credentials or PLACEHOLDER))


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening, closed: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zones_offering(endpoint: str, region: str, instance_type: str) -> int:
    ec2 = session(region).client("ec2", endpoint_url=endpoint)
    offers = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
    )
    return len(offers["InstanceTypeOfferings"])


def test_spot_price_history_median_over_zones(endpoint):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=endpoint)
    zones = zones_offering(endpoint, "us-east-1", "c6i.xlarge")
    quote = live_spot_price(clients.ec2, "us-east-1", "c6i.xlarge")
    assert zones >= 2
    assert (quote.capacity, quote.hourly_usd, quote.estimate) == ("spot", 0.00001, False)
    assert quote.source == f"EC2 spot price history (median of {zones} zones)"
    assert quote.describe() == f"$0.00/h spot (EC2 spot price history (median of {zones} zones))"


def test_live_or_table_takes_the_live_spot_price_when_aws_answers(endpoint, table):
    clients = make_price_clients(session("eu-west-1"), "eu-west-1", endpoint_url=endpoint)
    quote = live_or_table(table, "eu-west-1", "c6i.xlarge", "spot", clients)
    assert quote.source.startswith("EC2 spot price history (median of ") and quote.note is None
    assert quote.region == "eu-west-1"


def test_a_type_without_spot_history_falls_back_to_the_table(endpoint, table):
    # EC2's offerings as moto carries them list p3.2xlarge in no zone and hpc6a only in us-east-2 (of ours):
    # the history is empty, so the table answers and says why, or says the type is not offered there
    assert zones_offering(endpoint, "us-east-1", "p3.2xlarge") == 0
    clients = make_price_clients(session(), "us-east-1", endpoint_url=endpoint)
    quote = live_or_table(table, "us-east-1", "p3.2xlarge", "spot", clients)
    assert quote.source.startswith(table.label) and quote.estimate and quote.hourly_usd == pytest.approx(3.06 * 0.4)
    assert quote.note == (
        f"no live price from EC2 spot price history (no Linux spot price for p3.2xlarge); used the {table.label}"
    )
    with pytest.raises(PriceNotFound, match=re.escape("hpc6a.48xlarge is not offered in us-east-1")):
        live_or_table(table, "us-east-1", "hpc6a.48xlarge", "spot", clients)


def test_a_refused_connection_falls_back_to_the_table_quickly(table, closed_port):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=f"http://127.0.0.1:{closed_port}")
    started = time.monotonic()
    ondemand = live_or_table(table, "us-east-1", "c6i.xlarge", "ondemand", clients)
    spot = live_or_table(table, "us-east-1", "c6i.xlarge", "spot", clients)
    assert time.monotonic() - started < 10
    assert (ondemand.hourly_usd, ondemand.source, ondemand.estimate) == (0.17, table.label, False)
    assert ondemand.note == (
        f"no live price from AWS Pricing API (Could not connect to the endpoint URL: "
        f'"http://127.0.0.1:{closed_port}/"); used the {table.label}'
    )
    assert spot.estimate and spot.source == f"{table.label}: 40% of on-demand"
    assert spot.note.startswith("no live price from EC2 spot price history (Could not connect to the endpoint URL")
    assert spot.describe() == f"$0.068/h spot ~ estimate ({table.label}: 40% of on-demand)"


def test_a_cluster_cost_with_aws_unreachable_is_the_tables(table, closed_port):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=f"http://127.0.0.1:{closed_port}")
    cost = hourly_cluster_cost(
        table,
        "us-east-1",
        ("t3.medium", "ondemand"),
        [("c6i.4xlarge", "spot", 10)],
        quote=lambda region, t, capacity: live_or_table(table, region, t, capacity, clients),
    )
    assert cost.total_hourly_usd == pytest.approx(0.0416 + 10 * 0.68 * 0.4) and cost.estimate
    assert all(f"({table.label}" in line for line in cost.text_lines()[:-1])


def test_no_credentials_falls_back_to_the_table(endpoint, table, monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup from this machine
    clients = make_price_clients(boto3.session.Session(region_name="us-east-1"), "us-east-1", endpoint_url=endpoint)
    quote = live_or_table(table, "us-east-1", "m6i.large", "spot", clients)
    assert quote.source == f"{table.label}: 40% of on-demand" and quote.estimate
    assert (
        quote.note
        == f"no live price from EC2 spot price history (Unable to locate credentials); used the {table.label}"
    )


def test_pricing_api_cannot_be_served_by_moto_and_falls_back(endpoint, table):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=endpoint)
    quote = live_or_table(table, "us-east-1", "r6i.large", "ondemand", clients)
    assert (quote.hourly_usd, quote.source) == (0.126, table.label)
    assert quote.note.startswith("no live price from AWS Pricing API (500") and "\n" not in quote.note


def test_cost_estimate_with_live_prices_says_which_source_answered(endpoint, tmp_path):
    """`cost estimate --live-prices` through the CLI against moto: spot from the spot price history, the
    on-demand figures from the table (moto has no Pricing API), each said."""
    import json

    from tests.helpers import err, out, run_cli

    state = tmp_path / "state"
    assert run_cli("init", str(tmp_path / "study"), state=state).returncode == 0
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "placeholder",
        "AWS_SECRET_ACCESS_KEY": "placeholder",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    result = run_cli(
        "cost",
        "estimate",
        "--subjects",
        "100",
        "--minutes-per-subject",
        "8",
        "--live-prices",
        "--json",
        state=state,
        cwd=tmp_path / "study",
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, err(result)
    data = json.loads(out(result))
    assert "EC2 spot price history (median of" in data["prices"] and "price table of" in data["prices"]
    assert data["spot_is_estimate"] is False  # a live spot price is not the table's estimate
    assert any(n.startswith("no live price from AWS Pricing API") for n in data["notes"])
    assert data["dollars"]["spot"] < data["dollars"]["ondemand"]


def test_describe_instance_types_gives_the_shape_of_a_type_the_table_lacks(endpoint):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=endpoint)
    shape = live_instance_shape(clients.ec2, "c8g.xlarge")  # not in the table; in moto's copy of EC2's list
    assert (shape.vcpus, shape.memory_gib) == (4, 8)
    with pytest.raises(LivePriceUnavailable, match=re.escape("no shape of c9z.huge from EC2 DescribeInstanceTypes")):
        live_instance_shape(clients.ec2, "c9z.huge")


def test_neither_aws_nor_the_table_says_both(table, closed_port):
    clients = make_price_clients(session(), "us-east-1", endpoint_url=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(PriceNotFound) as caught:
        live_or_table(table, "us-east-1", "c8g.xlarge", "ondemand", clients)
    assert caught.value.message.startswith("no live price from AWS Pricing API (Could not connect")
    assert caught.value.message.endswith(f", and no price for c8g.xlarge in the {table.label}")
    assert "pricing:GetProducts" in caught.value.hint
