"""Instance and storage prices: the price table shipped with clustertools, cost arithmetic, money text.

Pure: no boto3. The table (``cluster_tools/data/prices.json``) holds on-demand list prices per region and
type, each type's vCPUs and memory, storage prices per GB-month, and one documented spot assumption: spot
prices are never stored per type, so every spot figure from the table is an estimate and says so
("spot ~ estimate"). Live prices come from ``cluster_tools.transport.aws_prices``; the parsers of their
answers live here so they are tested with literal responses.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cluster_tools.errors import ClusterToolsError

Capacity = Literal["ondemand", "spot"]
StorageKind = Literal["ebs_gp3", "efs_standard", "fsx_lustre_persistent_125", "fsx_lustre_scratch_2"]
STORAGE_KINDS: tuple[StorageKind, ...] = get_args(StorageKind)
HOURS_PER_MONTH = 730  # AWS's own convention for monthly estimates
_CAPACITY_TEXT = {"ondemand": "on-demand", "spot": "spot"}
# DescribeSpotPriceHistory names Linux either way (the second is the EC2-Classic-era spelling).
_LINUX_SPOT = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")


class PriceNotFound(ClusterToolsError):
    """No price for that region, type or storage kind in the table (or that capacity is not sold)."""


class LivePriceUnavailable(ClusterToolsError):
    """AWS gave no usable price or instance shape: unreachable, refused, or an answer without one (no product,
    or several)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceShape(_Frozen):
    vcpus: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    gpus: int = Field(default=0, ge=0)


class SpotAssumption(_Frozen):
    default_fraction: float = Field(gt=0, le=1, description="spot price as a fraction of on-demand: an estimate")
    no_spot_families: tuple[str, ...] = ()
    note: str


class RegionPrices(_Frozen):
    ondemand_hourly: dict[str, float | None]  # None: not offered in this region
    storage_gb_month: dict[StorageKind, float]


class PriceTable(_Frozen):
    """The shipped price table; every region lists every type (None when not offered) and storage kind."""

    as_of: dt.date
    currency: Literal["USD"]
    source: str = Field(min_length=1)
    spot: SpotAssumption
    instances: dict[str, InstanceShape]
    regions: dict[str, RegionPrices]
    unverified: frozenset[str] = frozenset()  # "region:type" or "region:storage kind"

    @model_validator(mode="after")
    def _complete(self) -> PriceTable:
        types = set(self.instances)
        for name, region in self.regions.items():
            if set(region.ondemand_hourly) != types:
                odd = sorted(set(region.ondemand_hourly) ^ types)
                raise ValueError(f"{name} lists other instance types than 'instances': {', '.join(odd)}")
            if set(region.storage_gb_month) != set(STORAGE_KINDS):
                raise ValueError(f"{name} must price every storage kind: {', '.join(STORAGE_KINDS)}")
            if any(price is not None and price <= 0 for price in region.ondemand_hourly.values()):
                raise ValueError(f"{name} has a price that is not positive")
        return self

    @property
    def label(self) -> str:
        return f"price table of {self.as_of.isoformat()}"


def parse_price_table(text: str) -> PriceTable:
    return PriceTable.model_validate(json.loads(text))


@functools.lru_cache(maxsize=1)  # immutable data shipped in the package; nothing to reset
def load_price_table() -> PriceTable:
    """The table shipped in the package (``cluster_tools/data/prices.json``)."""
    return parse_price_table((resources.files("cluster_tools") / "data" / "prices.json").read_text("utf-8"))


class PriceQuote(_Frozen):
    """One hourly price and where it came from; ``estimate`` is True for anything not a listed price."""

    region: str
    instance_type: str
    capacity: Capacity
    hourly_usd: float = Field(ge=0)
    source: str  # "price table of 2026-11-22", "AWS Pricing API", "EC2 spot price history (median of 3 zones)"
    estimate: bool = False
    note: str | None = None  # e.g. why a live lookup fell back to the table

    def describe(self) -> str:
        """``$0.17/h on-demand (AWS Pricing API)``; an estimate reads ``spot ~ estimate``."""
        kind = _CAPACITY_TEXT[self.capacity] + (" ~ estimate" if self.estimate else "")
        return f"{format_usd(self.hourly_usd, 'h')} {kind} ({self.source})"


class StorageQuote(_Frozen):
    region: str
    kind: StorageKind
    size_gb: float
    gb_month_usd: float
    monthly_usd: float
    source: str
    estimate: bool = False

    def describe(self) -> str:
        approx = " ~ estimate" if self.estimate else ""
        return f"{format_usd(self.monthly_usd, 'month')}{approx} ({self.size_gb:g} GB {self.kind}, {self.source})"


def _region(table: PriceTable, region: str) -> RegionPrices:
    if region not in table.regions:
        raise PriceNotFound(
            f"no prices for region {region} in the {table.label}",
            f"the table covers {', '.join(table.regions)}; a live lookup covers every region",
        )
    return table.regions[region]


def _family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def instance_price(table: PriceTable, region: str, instance_type: str, capacity: Capacity = "ondemand") -> PriceQuote:
    """The table's hourly price; spot is ``spot.default_fraction`` of on-demand and marked an estimate."""
    prices = _region(table, region).ondemand_hourly
    if instance_type not in prices:
        families = sorted({_family(t) for t in table.instances})
        raise PriceNotFound(
            f"no price for {instance_type} in the {table.label}",
            f"the table covers {', '.join(families)} (cluster_tools/data/prices.json); a live lookup covers every type",
        )
    ondemand = prices[instance_type]
    if ondemand is None:
        raise PriceNotFound(
            f"{instance_type} is not offered in {region} (per the {table.label})",
            "pick another type or region; `aws ec2 describe-instance-type-offerings` has the truth",
        )
    unverified = f"{region}:{instance_type}" in table.unverified
    source = table.label + (", unverified figure" if unverified else "")
    if capacity == "ondemand":
        return PriceQuote(
            region=region,
            instance_type=instance_type,
            capacity="ondemand",
            hourly_usd=ondemand,
            source=source,
            estimate=unverified,
        )
    if _family(instance_type) in table.spot.no_spot_families:
        raise PriceNotFound(f"{instance_type} is not sold as Spot", "use an on-demand queue for it")
    return PriceQuote(
        region=region,
        instance_type=instance_type,
        capacity="spot",
        estimate=True,
        hourly_usd=round(ondemand * table.spot.default_fraction, 6),
        source=f"{source}: {table.spot.default_fraction:.0%} of on-demand",
    )


def instance_shape(table: PriceTable, instance_type: str) -> tuple[int, float]:
    """(vCPUs, memory GiB) of a type in the table."""
    shape = table.instances.get(instance_type)
    if shape is None:
        raise PriceNotFound(
            f"{instance_type} is not in the {table.label}",
            "EC2 DescribeInstanceTypes knows every type's vCPUs and memory",
        )
    return shape.vcpus, shape.memory_gib


def shipped_instance_shape(instance_type: str) -> tuple[int, float] | None:
    """(vCPUs, memory GiB) of a type in the shipped table, None when it is not there."""
    shape = load_price_table().instances.get(instance_type)
    return None if shape is None else (shape.vcpus, shape.memory_gib)


def shipped_instance_gpus(instance_type: str) -> int | None:
    """GPUs of a type in the shipped table, None when it is not there."""
    shape = load_price_table().instances.get(instance_type)
    return None if shape is None else shape.gpus


def storage_monthly_price(table: PriceTable, region: str, kind: StorageKind, size_gb: float) -> StorageQuote:
    """What ``size_gb`` of a storage kind costs per month (storage only: no IOPS, throughput or requests)."""
    prices = _region(table, region).storage_gb_month
    if kind not in prices:
        raise PriceNotFound(f"no storage kind {kind!r} in the {table.label}", f"one of {', '.join(STORAGE_KINDS)}")
    if size_gb < 0:
        raise PriceNotFound(f"a storage size cannot be negative ({size_gb:g} GB)")
    unverified = f"{region}:{kind}" in table.unverified
    per_gb = prices[kind]
    return StorageQuote(
        region=region,
        kind=kind,
        size_gb=size_gb,
        gb_month_usd=per_gb,
        monthly_usd=round(per_gb * size_gb, 6),
        estimate=unverified,
        source=table.label + (", unverified figure" if unverified else ""),
    )


class CostLine(_Frozen):
    role: Literal["head", "compute"]
    count: int = Field(ge=0)
    unit: PriceQuote

    @property
    def hourly_usd(self) -> float:
        return self.unit.hourly_usd * self.count

    def text(self) -> str:
        u = self.unit
        kind = _CAPACITY_TEXT[u.capacity] + (" ~ estimate" if u.estimate else "")
        return (
            f"{self.role:<8}{self.count:>4} x {u.instance_type:<15} {kind:<21}{format_usd(u.hourly_usd, 'h'):>10}"
            f" = {format_usd(self.hourly_usd, 'h'):>10}  ({u.source})"
        )


class CostBreakdown(_Frozen):
    """An hourly cost, line by line, with where each price came from."""

    region: str
    lines: tuple[CostLine, ...]

    @property
    def total_hourly_usd(self) -> float:
        return sum(line.hourly_usd for line in self.lines)

    @property
    def estimate(self) -> bool:
        return any(line.unit.estimate for line in self.lines)

    def text_lines(self) -> list[str]:
        """Lines a CLI prints as they are; ``~`` marks estimates."""
        approx = "~ " if self.estimate else ""
        total = (
            f"total {approx}{format_usd(self.total_hourly_usd, 'h')} in {self.region} "
            f"({approx}{format_usd(self.total_hourly_usd * HOURS_PER_MONTH, 'month')} at {HOURS_PER_MONTH} h)"
        )
        return [line.text() for line in self.lines] + [total]


Quoter = Callable[[str, str, Capacity], PriceQuote]


def hourly_cluster_cost(
    table: PriceTable,
    region: str,
    head: tuple[str, Capacity] | None,
    compute: Sequence[tuple[str, Capacity, int]],
    *,
    quote: Quoter | None = None,
) -> CostBreakdown:
    """Head node (when given) plus compute nodes per hour. ``quote(region, type, capacity)`` defaults to the table;
    pass a live one (``transport.aws_prices.live_or_table``) to prefer live prices. Each type is asked once."""
    ask = quote or functools.partial(instance_price, table)
    cache: dict[tuple[str, Capacity], PriceQuote] = {}

    def unit(instance_type: str, capacity: Capacity) -> PriceQuote:
        if (instance_type, capacity) not in cache:
            cache[instance_type, capacity] = ask(region, instance_type, capacity)
        return cache[instance_type, capacity]

    lines = [CostLine(role="head", count=1, unit=unit(*head))] if head else []
    lines += [CostLine(role="compute", count=count, unit=unit(t, capacity)) for t, capacity, count in compute]
    return CostBreakdown(region=region, lines=tuple(lines))


def format_usd(amount: float, per: Literal["h", "month"] | None = None) -> str:
    """``$1.23/h``, ``$45.60/month``, ``$1,234.50``; below a dime up to four decimals (``$0.0416/h``,
    ``$0.068/h``), rounded half up."""
    small = 0 < abs(amount) < 0.1
    value = Decimal(str(amount)).quantize(Decimal("0.0001" if small else "0.01"), rounding=ROUND_HALF_UP)
    digits = f"{abs(value):,}"
    if small:  # 0.0680 -> 0.068, never fewer than two decimals
        digits = digits.rstrip("0") if len(digits.rstrip("0")) >= 4 else digits[:4]
    text = f"-${digits}" if value < 0 else f"${digits}"
    return f"{text}/{per}" if per else text


class OnDemandOffer(_Frozen):
    """One hourly on-demand price dimension of one product in a GetProducts answer."""

    instance_type: str
    region: str
    hourly_usd: float
    operation: str
    market: str
    sku: str


def parse_get_products(price_list: Iterable[str | Mapping[str, Any]]) -> list[OnDemandOffer]:
    """The hourly USD on-demand dimensions of a Pricing API GetProducts ``PriceList`` (JSON strings)."""
    offers = []
    for item in price_list:
        doc = json.loads(item) if isinstance(item, str) else item
        product = doc.get("product", {})
        attrs = product.get("attributes", {})
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = dim.get("pricePerUnit", {}).get("USD")
                if dim.get("unit") != "Hrs" or usd is None:
                    continue
                offers.append(
                    OnDemandOffer(
                        instance_type=attrs.get("instanceType", ""),
                        region=attrs.get("regionCode", ""),
                        hourly_usd=float(usd),
                        operation=attrs.get("operation", ""),
                        market=attrs.get("marketoption", "OnDemand"),
                        sku=product.get("sku", ""),
                    )
                )
    return offers


def ondemand_hourly_from_products(
    price_list: Iterable[str | Mapping[str, Any]], region: str, instance_type: str
) -> float:
    """The one Linux on-demand hourly price in a GetProducts answer; plain RunInstances offers win over
    others (capacity blocks, zero-priced placeholders). Several different prices are refused, not guessed."""
    offers = [
        o
        for o in parse_get_products(price_list)
        if o.instance_type == instance_type and o.region == region and o.hourly_usd > 0
    ]
    plain = [o for o in offers if o.operation == "RunInstances" and o.market == "OnDemand"] or offers
    prices = sorted({o.hourly_usd for o in plain})
    if len(prices) != 1:
        found = "no Linux on-demand price" if not prices else f"{len(prices)} different Linux on-demand prices"
        raise LivePriceUnavailable(f"{found} for {instance_type} in {region}")
    return prices[0]


def shape_from_instance_types(items: Iterable[Mapping[str, Any]], instance_type: str) -> InstanceShape:
    """vCPUs, memory (GiB) and GPUs of one type from a DescribeInstanceTypes ``InstanceTypes`` answer."""
    for item in items:
        if item.get("InstanceType") != instance_type:
            continue
        try:
            gpus = sum(int(g.get("Count", 0)) for g in item.get("GpuInfo", {}).get("Gpus", []))
            return InstanceShape(
                vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
                memory_gib=item["MemoryInfo"]["SizeInMiB"] / 1024,
                gpus=gpus,
            )
        except (KeyError, TypeError, ValueError):
            break
    raise LivePriceUnavailable(f"no vCPU and memory figures for {instance_type} in EC2's answer")


def median_spot_price(history: Iterable[Mapping[str, Any]], instance_type: str) -> tuple[float, int]:
    """(median, zones) over the latest Linux price of each availability zone in DescribeSpotPriceHistory
    records. The median, not the lowest: ParallelCluster's default allocation weighs capacity as well as price,
    so the cheapest zone is what a lucky run pays, the median what a typical one does."""
    latest: dict[str, tuple[Any, float]] = {}
    for record in history:
        if record.get("InstanceType") != instance_type or record.get("ProductDescription") not in _LINUX_SPOT:
            continue
        zone, when = record["AvailabilityZone"], record["Timestamp"]
        if zone not in latest or when > latest[zone][0]:
            latest[zone] = (when, float(record["SpotPrice"]))
    if not latest:
        raise LivePriceUnavailable(f"no Linux spot price for {instance_type}")
    return statistics.median(price for _, price in latest.values()), len(latest)
