"""Where cost figures come from: the price table shipped with clustertools, AWS itself (the Pricing API, EC2
spot price history and DescribeInstanceTypes), or both.

Two orders, for two uses:
- ``live_quoter``: AWS first, the table when AWS does not answer (``--live-prices``: today's prices);
- ``table_then_aws``: the table first, AWS only for a type or region the table lacks (``submit``: no network
  for the types the table covers, and a type it does not cover still gets a price when AWS answers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster_tools.errors import ConfigError
from cluster_tools.model.cost.pricing import (
    Capacity,
    PriceNotFound,
    PriceQuote,
    PriceTable,
    instance_price,
    instance_shape,
)

Quote = Callable[[str, str, Capacity], PriceQuote]  # (region, instance type, capacity)
Shape = Callable[[str, str], tuple[int, float]]  # (region, instance type) -> (vCPUs, memory GiB)


@dataclass(frozen=True)
class Lookups:
    """A price and a shape for an instance type; each raises PriceNotFound or LivePriceUnavailable (both
    ClusterToolsError) when it has no answer."""

    quote: Quote
    shape: Shape


def table_lookups(table: PriceTable) -> Lookups:
    return Lookups(
        quote=lambda region, t, capacity: instance_price(table, region, t, capacity),
        shape=lambda _region, t: instance_shape(table, t),
    )


def table_then_aws(table: PriceTable, aws: Lookups) -> Lookups:
    """The table's answer; for a type or region it lacks (PriceNotFound), AWS's."""

    def quote(region: str, instance_type: str, capacity: Capacity) -> PriceQuote:
        try:
            return instance_price(table, region, instance_type, capacity)
        except PriceNotFound:
            return aws.quote(region, instance_type, capacity)

    def shape(region: str, instance_type: str) -> tuple[int, float]:
        try:
            return instance_shape(table, instance_type)
        except PriceNotFound:
            return aws.shape(region, instance_type)

    return Lookups(quote, shape)


def aws_lookups(*, profile: str | None = None, endpoint_url: str | None = None) -> Lookups:
    """AWS only, no fallback: clients are made on first use, one set per region asked about; an AWS that
    cannot be reached or refuses raises LivePriceUnavailable naming the source and why."""
    from cluster_tools.transport.aws_prices import live_instance_shape, live_price

    clients = _client_cache(profile, endpoint_url)

    def shape(region: str, instance_type: str) -> tuple[int, float]:
        found = live_instance_shape(clients(region).ec2, instance_type)
        return found.vcpus, found.memory_gib

    return Lookups(quote=lambda region, t, capacity: live_price(region, t, capacity, clients(region)), shape=shape)


def aws_for(environ) -> Callable[[], Lookups]:
    """How a command gets AWS's figures when the table lacks a type: made only when needed, at the
    environment's AWS_ENDPOINT_URL when set (moto in tests)."""
    return lambda: aws_lookups(endpoint_url=environ.get("AWS_ENDPOINT_URL"))


def live_quoter(region: str | None = None, *, profile: str | None = None, endpoint_url: str | None = None) -> Quote:
    """A quote function that asks AWS first (the Pricing API for on-demand, the spot price history for
    spot) and falls back to the shipped table, saying why in the quote's note."""
    from cluster_tools.model.cost.pricing import load_price_table
    from cluster_tools.transport.aws_prices import live_or_table

    clients, table = _client_cache(profile, endpoint_url, region, strict=True), load_price_table()
    return lambda where, instance_type, capacity: live_or_table(table, where, instance_type, capacity, clients(where))


def _client_cache(
    profile: str | None, endpoint_url: str | None, region: str | None = None, *, strict: bool = False
) -> Callable[[str], Any]:
    """region -> PriceClients, made once per region (spot history and DescribeInstanceTypes are regional).
    A profile that does not exist is a ConfigError (``strict``: the user named it) or LivePriceUnavailable."""
    from cluster_tools.model.cost.pricing import LivePriceUnavailable
    from cluster_tools.transport.aws_prices import make_price_clients
    from cluster_tools.transport.aws_session import aws_failure_of, aws_session

    try:
        session = aws_session(profile=profile, region=region)
    except ConfigError as exc:
        if strict:
            raise ConfigError(f"--profile: {exc.message}", exc.hint) from None
        raise LivePriceUnavailable(f"cannot ask AWS ({exc.message})") from None
    made: dict[str, Any] = {}

    def clients(where: str) -> Any:
        if where not in made:
            try:
                made[where] = make_price_clients(session, where, endpoint_url=endpoint_url)
            except Exception as exc:
                if (failure := aws_failure_of(exc)) is None:
                    raise
                raise LivePriceUnavailable(f"cannot ask AWS ({failure.message})") from None
        return made[where]

    return clients
