"""Live AWS prices: the Pricing API (on-demand) and EC2 spot price history, with the price table as fallback;
and an instance type's vCPUs, memory and GPUs (EC2 DescribeInstanceTypes) for a type the table lacks.

Clients are built by transport.aws_session from an explicit boto3 Session and passed in; the
answers are parsed by pure functions of ``cluster_tools.model.cost.pricing``. Short timeouts and two attempts at most:
a price is a nicety, and the table answers when AWS does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cluster_tools.model.cost.pricing import (
    Capacity,
    InstanceShape,
    LivePriceUnavailable,
    PriceNotFound,
    PriceQuote,
    PriceTable,
    instance_price,
    median_spot_price,
    ondemand_hourly_from_products,
    shape_from_instance_types,
)

PRICING_API = "AWS Pricing API"
SPOT_HISTORY = "EC2 spot price history"

PRICING_REGION = "us-east-1"  # the Pricing API answers for every region from here
TIMEOUT_SECONDS = 3
LIVE_HINT = (
    "live prices need AWS credentials allowed pricing:GetProducts, ec2:DescribeSpotPriceHistory and "
    "ec2:DescribeInstanceTypes"
)
_MAX_PRODUCT_PAGES = 5  # the filters leave one product or a handful; never page through the catalog


@dataclass(frozen=True)
class PriceClients:
    region: str  # the region being priced (the EC2 client's)
    pricing: Any
    ec2: Any


def make_price_clients(session: Any, region: str, *, endpoint_url: str | None = None) -> PriceClients:
    """A Pricing API client (in us-east-1) and an EC2 client in ``region`` from ``session`` (a
    ``boto3.session.Session``), with ~3 s connect/read timeouts and at most two attempts each."""
    from cluster_tools.transport.aws_session import aws_client

    def client(service: str, client_region: str) -> Any:
        return aws_client(
            session,
            service,
            client_region,
            endpoint_url=endpoint_url,
            connect_timeout=TIMEOUT_SECONDS,
            read_timeout=TIMEOUT_SECONDS,
            attempts=2,
        )

    return PriceClients(region=region, pricing=client("pricing", PRICING_REGION), ec2=client("ec2", region))


def get_products_filters(region: str, instance_type: str) -> list[dict[str, str]]:
    """GetProducts filters for the Linux, shared-tenancy, no-software, in-use on-demand price of one type."""
    wanted = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in wanted.items()]


def live_ondemand_price(pricing_client: Any, region: str, instance_type: str) -> PriceQuote:
    """The on-demand hourly price from the AWS Pricing API (GetProducts, service AmazonEC2)."""
    price_list: list[str] = []
    pages = pricing_client.get_paginator("get_products").paginate(
        ServiceCode="AmazonEC2", FormatVersion="aws_v1", Filters=get_products_filters(region, instance_type)
    )
    for number, page in enumerate(pages, start=1):
        price_list.extend(page.get("PriceList", []))
        if number >= _MAX_PRODUCT_PAGES:
            break
    hourly = ondemand_hourly_from_products(price_list, region, instance_type)
    return PriceQuote(
        region=region, instance_type=instance_type, capacity="ondemand", hourly_usd=hourly, source=PRICING_API
    )


def live_spot_price(ec2_client: Any, region: str, instance_type: str, *, now: dt.datetime | None = None) -> PriceQuote:
    """The current Linux spot price: the median over availability zones of each zone's latest price
    (see ``pricing.median_spot_price`` for why the median). A StartTime of now asks for the price in
    effect now in each zone."""
    when = now or dt.datetime.now(dt.UTC)
    answer = ec2_client.describe_spot_price_history(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], StartTime=when
    )
    price, zones = median_spot_price(answer.get("SpotPriceHistory", []), instance_type)
    return PriceQuote(
        region=region,
        instance_type=instance_type,
        capacity="spot",
        hourly_usd=price,
        source=f"{SPOT_HISTORY} (median of {zones} zone{'s' if zones != 1 else ''})",
    )


def live_price(region: str, instance_type: str, capacity: Capacity, clients: PriceClients) -> PriceQuote:
    """The live price, or LivePriceUnavailable saying which source failed and why: unreachable endpoints,
    missing credentials, AWS errors (AccessDenied, throttling) and answers without a usable price. Anything
    else is a bug and raises as it is."""
    live = PRICING_API if capacity == "ondemand" else SPOT_HISTORY
    try:
        if capacity == "spot":
            return live_spot_price(clients.ec2, region, instance_type)
        return live_ondemand_price(clients.pricing, region, instance_type)
    except Exception as exc:
        if (reason := _unavailable_reason(exc)) is None:
            raise
        raise LivePriceUnavailable(f"no live price from {live} ({reason})") from None


def live_or_table(
    table: PriceTable, region: str, instance_type: str, capacity: Capacity, clients: PriceClients
) -> PriceQuote:
    """The live price when AWS answers, else the table's, with ``note`` saying why; ``source`` names
    which one answered (see ``live_price`` for what falls back)."""
    try:
        return live_price(region, instance_type, capacity, clients)
    except LivePriceUnavailable as exc:
        try:
            quote = instance_price(table, region, instance_type, capacity)
        except PriceNotFound as missing:  # neither answers: say both
            known = region in table.regions and instance_type in table.instances  # else its hint is "ask AWS"
            raise PriceNotFound(f"{exc.message}, and {missing.message}", missing.hint if known else LIVE_HINT) from None
        return quote.model_copy(update={"note": f"{exc.message}; used the {table.label}"})


def live_instance_shape(ec2_client: Any, instance_type: str) -> InstanceShape:
    """vCPUs, memory and GPUs from EC2 DescribeInstanceTypes (in the client's region), or LivePriceUnavailable."""
    try:
        answer = ec2_client.describe_instance_types(InstanceTypes=[instance_type])
        return shape_from_instance_types(answer.get("InstanceTypes", []), instance_type)
    except Exception as exc:
        if (reason := _unavailable_reason(exc)) is None:
            raise
        raise LivePriceUnavailable(f"no shape of {instance_type} from EC2 DescribeInstanceTypes ({reason})") from None


def _unavailable_reason(exc: Exception) -> str | None:
    """Why AWS gave no answer (unreachable, no credentials, an error code), in one line of 160 characters at
    most; None when ``exc`` is none of those: a bug, raised as it is."""
    from cluster_tools.transport.aws_session import aws_failure_of

    if isinstance(exc, LivePriceUnavailable):
        return exc.message
    failure = aws_failure_of(exc)
    if failure is None or failure.kind == "other":
        return None
    text = (
        f"{failure.code or 'error'}: {failure.message}".rstrip(": ") if failure.kind == "answered" else failure.message
    )
    return text if len(text) <= 160 else text[:157] + "..."
