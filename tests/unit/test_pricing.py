"""cluster_tools.model.cost.pricing: the shipped price table, quotes, cost arithmetic, money text, and the parsers of
live answers (the Pricing API's GetProducts and EC2's DescribeSpotPriceHistory) over literal responses.

GET_PRODUCTS_PAGE is written from the documented GetProducts format (``FormatVersion=aws_v1``: each
``PriceList`` entry is a JSON string with ``product.attributes`` and ``terms.OnDemand/Reserved``); it was not
captured from AWS (no network here), and its figure is the published c6i.xlarge us-east-1 Linux price.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.cost.pricing import (
    HOURS_PER_MONTH,
    STORAGE_KINDS,
    InstanceShape,
    LivePriceUnavailable,
    PriceNotFound,
    PriceQuote,
    format_usd,
    hourly_cluster_cost,
    instance_price,
    instance_shape,
    load_price_table,
    median_spot_price,
    ondemand_hourly_from_products,
    parse_get_products,
    parse_price_table,
    shape_from_instance_types,
    storage_monthly_price,
)

REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"]
LINEAR_FAMILIES = [
    "c5",
    "c5a",
    "c6i",
    "c6a",
    "c7i",
    "c7a",
    "m5",
    "m6i",
    "m6a",
    "m6g",
    "m7i",
    "r5",
    "r6i",
    "r6a",
    "r6g",
    "r7i",
]
# Not offered there (null in the table): hpc6a outside us-east-2; g6 is not in the catalog for eu-west-1.
NOT_OFFERED = {
    ("us-east-1", "hpc6a.48xlarge"),
    ("us-west-2", "hpc6a.48xlarge"),
    ("eu-west-1", "hpc6a.48xlarge"),
    ("eu-central-1", "hpc6a.48xlarge"),
    *(("eu-west-1", f"g6.{size}") for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")),
}
ROOT = Path(__file__).resolve().parents[2]
# Instance types the users' own write-ups run (steering seeds, not in this repository): m5.4xlarge for the ABCD
# segmentation, m6g.4xlarge / r6g.2xlarge for rapidtide on HCP, p2.xlarge for the GPU sweep.
SEED_TYPES = ["m5.4xlarge", "m6g.4xlarge", "r6g.2xlarge", "p2.xlarge"]
INSTANCE_TYPE = re.compile(r"\b[a-z][a-z0-9]*\.(?:\d*xlarge|large|medium|small|micro|nano)\b")


@pytest.fixture(scope="module")
def table():
    return load_price_table()


def _product(instance_type="c6i.xlarge", usd="0.1700000000", sku="3J2BFEJ3GVKMZC5V", **attributes) -> dict:
    attrs = {
        "instanceType": instance_type,
        "regionCode": "us-east-1",
        "location": "US East (N. Virginia)",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
        "usagetype": f"BoxUsage:{instance_type}",
        "vcpu": "4",
        "memory": "8 GiB",
        "operation": "RunInstances",
        "marketoption": "OnDemand",
        "servicecode": "AmazonEC2",
        "instanceFamily": "Compute optimized",
        **attributes,
    }
    return {
        "product": {"productFamily": "Compute Instance", "attributes": attrs, "sku": sku},
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                f"{sku}.JRTCKXETXF": {
                    "priceDimensions": {
                        f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                            "unit": "Hrs",
                            "beginRange": "0",
                            "endRange": "Inf",
                            "appliesTo": [],
                            "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                            "description": f"${float(usd):g} per On Demand Linux {instance_type} Instance Hour",
                            "pricePerUnit": {"USD": usd},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            },
            "Reserved": {
                f"{sku}.4NA7Y494T4": {
                    "priceDimensions": {
                        f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                            "unit": "Hrs",
                            "beginRange": "0",
                            "endRange": "Inf",
                            "appliesTo": [],
                            "rateCode": f"{sku}.4NA7Y494T4.6YS6EN2CT7",
                            "description": f"Linux/UNIX (Amazon VPC), {instance_type} reserved instance applied",
                            "pricePerUnit": {"USD": "0.1070000000"},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "4NA7Y494T4",
                    "termAttributes": {
                        "LeaseContractLength": "1yr",
                        "OfferingClass": "standard",
                        "PurchaseOption": "No Upfront",
                    },
                }
            },
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    }


GET_PRODUCTS_PAGE = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(_product())]}


# --- the table ---------------------------------------------------------------------------------------------


def test_the_table_loads_with_its_date_and_source(table):
    assert isinstance(table.as_of, dt.date) and table.label == f"price table of {table.as_of.isoformat()}"
    assert table.currency == "USD" and "NOT live data" in table.source and "unverified" in table.source
    assert "spot ~ estimate" in table.spot.note and 0 < table.spot.default_fraction < 1
    assert list(table.regions) == REGIONS


def test_every_region_prices_every_type_and_storage_kind(table):
    for region in REGIONS:
        prices = table.regions[region]
        assert set(prices.ondemand_hourly) == set(table.instances), region
        assert set(prices.storage_gb_month) == set(STORAGE_KINDS), region
    assert {(r, t) for r in REGIONS for t, p in table.regions[r].ondemand_hourly.items() if p is None} == NOT_OFFERED
    assert all(entry.split(":")[0] in REGIONS for entry in table.unverified)


@pytest.mark.parametrize("family", LINEAR_FAMILIES)
def test_sizes_scale_linearly_within_a_family(table, family):
    # AWS prices these families by size; a typo in one figure breaks the line
    for region in REGIONS:
        prices = table.regions[region].ondemand_hourly
        per_vcpu = {t: prices[t] / table.instances[t].vcpus for t in prices if t.startswith(f"{family}.")}
        assert len(per_vcpu) >= 7 and max(per_vcpu.values()) - min(per_vcpu.values()) < 1e-9, (region, per_vcpu)


@pytest.mark.parametrize(
    "region, instance_type, hourly",
    [
        ("us-east-1", "c6i.xlarge", 0.17),
        ("us-east-1", "t3.medium", 0.0416),
        ("us-west-2", "m5.large", 0.096),
        ("eu-west-1", "c6i.large", 0.0912),
        ("eu-central-1", "c5.xlarge", 0.194),
        ("us-east-2", "g5.2xlarge", 1.212),
        ("eu-central-1", "g5.2xlarge", 1.5156),
        ("eu-west-1", "g4dn.8xlarge", 2.426),
        ("us-east-1", "c7a.large", 0.10264),
    ],
)
def test_anchor_prices(table, region, instance_type, hourly):
    quote = instance_price(table, region, instance_type)
    assert (quote.hourly_usd, quote.capacity, quote.estimate) == (hourly, "ondemand", False)
    assert quote.describe().endswith(f"on-demand ({table.label})")


def test_shapes(table):
    assert instance_shape(table, "c6i.4xlarge") == (16, 32)
    assert instance_shape(table, "r6i.large") == (2, 16)
    assert instance_shape(table, "p3.2xlarge") == (8, 61)
    assert table.instances["g5.12xlarge"].gpus == 4 and instance_shape(table, "hpc6a.48xlarge") == (96, 384)
    with pytest.raises(PriceNotFound, match=re.escape("c9z.huge is not in the price table")):
        instance_shape(table, "c9z.huge")


def test_every_type_the_examples_the_init_template_and_the_seeds_name_is_in_the_table(table):
    named = set(SEED_TYPES)
    for path in [
        *(ROOT / "cluster-config" / "examples").glob("*.yaml"),
        ROOT / "cluster_tools" / "templates" / "project" / "clustertools.yaml.j2",
    ]:
        named |= set(INSTANCE_TYPE.findall(path.read_text()))
    assert {"g6.xlarge", "r6a.2xlarge", "t3.medium"} <= named  # the scan finds the examples' types
    assert sorted(named - set(table.instances)) == []


@pytest.mark.parametrize(
    "instance_type, shape, us_east_1, eu_central_1",
    [
        ("m6g.4xlarge", (16, 64, 0), 0.616, 0.736),
        ("r6g.2xlarge", (8, 64, 0), 0.4032, 0.4864),
        ("c7g.xlarge", (4, 8, 0), 0.145, 0.1649),
        ("r6a.2xlarge", (8, 64, 0), 0.4536, 0.5472),
        ("g6.xlarge", (4, 16, 1), 0.8048, 1.0064),
        ("g6.12xlarge", (48, 192, 4), 4.6016, 5.75429),
        ("p2.xlarge", (4, 61, 1), 0.9, 1.326),
        ("p3.8xlarge", (32, 244, 4), 12.24, 15.292),
        ("g4dn.xlarge", (4, 16, 1), 0.526, 0.658),
        ("g5.xlarge", (4, 16, 1), 1.006, 1.258),
    ],
)
def test_graviton_and_gpu_families_with_shapes_and_catalog_figures(
    table, instance_type, shape, us_east_1, eu_central_1
):
    s = table.instances[instance_type]
    assert (s.vcpus, s.memory_gib, s.gpus) == shape
    assert instance_price(table, "us-east-1", instance_type).hourly_usd == us_east_1
    assert instance_price(table, "eu-central-1", instance_type).hourly_usd == eu_central_1
    assert all(f"{region}:{instance_type}" not in table.unverified for region in REGIONS[:3])


def test_figures_not_seen_in_a_stored_catalog_are_marked_unverified(table):
    # p2 left the newer catalog; only its US figures were seen (in an older one)
    assert {"eu-west-1:p2.xlarge", "eu-central-1:p2.xlarge", "eu-west-1:p2.8xlarge", "eu-central-1:p2.8xlarge"} <= (
        table.unverified
    )
    assert instance_price(table, "eu-central-1", "p2.xlarge").estimate
    assert not any(entry.endswith(":p3.2xlarge") for entry in table.unverified)  # seen in all five regions
    assert "catalogs/v3/aws.csv" in table.source and "001367d22a0033fac286a8c71aeac7109e431bcb" in table.source
    with pytest.raises(PriceNotFound, match=re.escape("g6.xlarge is not offered in eu-west-1")):
        instance_price(table, "eu-west-1", "g6.xlarge")


def test_a_table_missing_a_type_in_a_region_is_refused(table):
    raw = json.loads(table.model_dump_json())
    broken = copy.deepcopy(raw)
    del broken["regions"]["eu-west-1"]["ondemand_hourly"]["c6i.large"]
    with pytest.raises(
        ValidationError, match=re.escape("eu-west-1 lists other instance types than 'instances': c6i.large")
    ):
        parse_price_table(json.dumps(broken))
    assert parse_price_table(json.dumps(raw)) == table  # round trip


# --- quotes and their errors -------------------------------------------------------------------------------


def test_spot_from_the_table_is_an_estimate_and_says_so(table):
    quote = instance_price(table, "us-east-1", "c6i.xlarge", "spot")
    assert quote.estimate and quote.hourly_usd == pytest.approx(0.17 * table.spot.default_fraction)
    assert quote.describe() == f"$0.068/h spot ~ estimate ({table.label}: 40% of on-demand)"


def test_unverified_figures_are_marked(table):
    quote = instance_price(table, "eu-west-1", "m6a.large")
    assert quote.estimate and quote.source == f"{table.label}, unverified figure"
    assert "~ estimate" in quote.describe()


@pytest.mark.parametrize(
    "call, message, hint",
    [
        (
            lambda t: instance_price(t, "us-east-1", "c9z.huge"),
            "no price for c9z.huge in the price table of",
            "the table covers c5, c5a, c6a, c6i, c7a, c7g, c7i, g4dn, g5, g6, hpc6a, m5, m6a, m6g, m6i, m7i, "
            "p2, p3, r5, r6a, r6g, r6i, r7i, t3",
        ),
        (
            lambda t: instance_price(t, "ap-south-1", "c6i.xlarge"),
            "no prices for region ap-south-1 in the price table",
            "the table covers us-east-1, us-east-2, us-west-2, eu-west-1, eu-central-1",
        ),
        (
            lambda t: instance_price(t, "us-east-1", "hpc6a.48xlarge"),
            "hpc6a.48xlarge is not offered in us-east-1",
            "describe-instance-type-offerings",
        ),
        (
            lambda t: instance_price(t, "us-east-2", "hpc6a.48xlarge", "spot"),
            "hpc6a.48xlarge is not sold as Spot",
            "on-demand queue",
        ),
        (lambda t: storage_monthly_price(t, "us-east-1", "s3", 10), "no storage kind 's3'", "ebs_gp3, efs_standard"),
    ],
)
def test_unknowns_are_one_line_with_a_hint(table, call, message, hint):
    with pytest.raises(PriceNotFound) as caught:
        call(table)
    line = caught.value.one_line()
    assert isinstance(caught.value, ClusterToolsError) and "\n" not in line
    assert line.startswith(message) and "(hint: " in line and hint in line


def test_storage_per_month(table):
    gp3 = storage_monthly_price(table, "us-east-1", "ebs_gp3", 100)
    assert (gp3.monthly_usd, gp3.gb_month_usd, gp3.estimate) == (8.0, 0.08, False)
    assert gp3.describe() == f"$8.00/month (100 GB ebs_gp3, {table.label})"
    assert storage_monthly_price(table, "eu-central-1", "ebs_gp3", 500).monthly_usd == pytest.approx(47.6)
    fsx = storage_monthly_price(table, "eu-central-1", "fsx_lustre_scratch_2", 1200)
    assert fsx.estimate and "~ estimate" in fsx.describe()
    assert storage_monthly_price(table, "us-east-1", "fsx_lustre_persistent_125", 1200).monthly_usd == pytest.approx(
        174.0
    )
    with pytest.raises(PriceNotFound, match="cannot be negative"):
        storage_monthly_price(table, "us-east-1", "efs_standard", -1)


# --- cost breakdown ------------------------------------------------------------------------------------------


def test_hourly_cluster_cost_adds_up_line_by_line(table):
    cost = hourly_cluster_cost(
        table,
        "us-east-1",
        ("t3.medium", "ondemand"),
        [("c6i.4xlarge", "spot", 10), ("c6i.xlarge", "ondemand", 2), ("g5.xlarge", "ondemand", 0)],
    )
    assert [(line.role, line.count, line.unit.instance_type) for line in cost.lines] == [
        ("head", 1, "t3.medium"),
        ("compute", 10, "c6i.4xlarge"),
        ("compute", 2, "c6i.xlarge"),
        ("compute", 0, "g5.xlarge"),
    ]
    assert [line.hourly_usd for line in cost.lines] == pytest.approx([0.0416, 2.72, 0.34, 0.0])
    assert cost.total_hourly_usd == pytest.approx(3.1016) and cost.estimate
    text = cost.text_lines()
    assert text[1].startswith("compute   10 x c6i.4xlarge     spot ~ estimate") and text[1].count("$2.72/h") == 1
    assert text[-1] == f"total ~ $3.10/h in us-east-1 (~ {format_usd(3.1016 * HOURS_PER_MONTH, 'month')} at 730 h)"
    on_demand = hourly_cluster_cost(table, "us-east-1", ("t3.medium", "ondemand"), [("c6i.xlarge", "ondemand", 3)])
    assert not on_demand.estimate
    assert on_demand.text_lines()[-1] == "total $0.55/h in us-east-1 ($402.67/month at 730 h)"


def test_hourly_cluster_cost_asks_each_type_once(table):
    asked = []

    def quote(region, instance_type, capacity):
        asked.append((region, instance_type, capacity))
        return PriceQuote(
            region=region, instance_type=instance_type, capacity=capacity, hourly_usd=1.5, source="AWS Pricing API"
        )

    cost = hourly_cluster_cost(
        table,
        "eu-west-1",
        ("c6i.large", "ondemand"),
        [("c6i.large", "ondemand", 4), ("c6i.large", "spot", 2)],
        quote=quote,
    )
    assert asked == [("eu-west-1", "c6i.large", "ondemand"), ("eu-west-1", "c6i.large", "spot")]
    assert cost.total_hourly_usd == pytest.approx(1.5 * 7) and not cost.estimate
    assert all(line.endswith("(AWS Pricing API)") for line in cost.text_lines()[:-1])


# --- money text ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, per, text",
    [
        (1.234, "h", "$1.23/h"),
        (45.6, "month", "$45.60/month"),
        (1234.5, None, "$1,234.50"),
        (0, "h", "$0.00/h"),
        (0.0416, "h", "$0.0416/h"),
        (0.068, "h", "$0.068/h"),
        (0.05, "h", "$0.05/h"),
        (0.00416, "h", "$0.0042/h"),
        (0.09999, "h", "$0.10/h"),
        (0.125, "h", "$0.13/h"),
        (2.675, "month", "$2.68/month"),
        (-2.5, None, "-$2.50"),
        (1_000_000, "month", "$1,000,000.00/month"),
    ],
)
def test_format_usd(amount, per, text):
    assert format_usd(amount, per) == text


# --- parsers of live answers ---------------------------------------------------------------------------------


def test_get_products_answer_parses_to_the_on_demand_price():
    offers = parse_get_products(GET_PRODUCTS_PAGE["PriceList"])
    assert [(o.instance_type, o.region, o.hourly_usd, o.operation, o.market) for o in offers] == [
        ("c6i.xlarge", "us-east-1", 0.17, "RunInstances", "OnDemand")
    ]  # the Reserved term is not an on-demand price
    assert ondemand_hourly_from_products(GET_PRODUCTS_PAGE["PriceList"], "us-east-1", "c6i.xlarge") == 0.17


def test_get_products_prefers_plain_run_instances_and_refuses_to_guess():
    placeholder = _product(usd="0.0000000000", sku="ZEROZEROZERO0000")
    block = _product(usd="0.4100000000", sku="CAPBLOCK00000000", marketoption="CapacityBlock")
    other_type = _product(instance_type="c6i.2xlarge", usd="0.3400000000", sku="OTHERTYPE0000000")
    answer = [json.dumps(p) for p in (placeholder, block, other_type)] + GET_PRODUCTS_PAGE["PriceList"]
    assert ondemand_hourly_from_products(answer, "us-east-1", "c6i.xlarge") == 0.17
    with pytest.raises(LivePriceUnavailable, match=re.escape("no Linux on-demand price for c6i.xlarge in eu-west-1")):
        ondemand_hourly_from_products(answer, "eu-west-1", "c6i.xlarge")
    with pytest.raises(LivePriceUnavailable, match="2 different Linux on-demand prices"):
        ondemand_hourly_from_products(
            [json.dumps(_product(usd="0.18", sku="TWIN000000000000")), *answer], "us-east-1", "c6i.xlarge"
        )
    with pytest.raises(LivePriceUnavailable):
        ondemand_hourly_from_products([], "us-east-1", "c6i.xlarge")


def _spot(zone, price, minute, kind="Linux/UNIX", instance_type="c6i.xlarge"):
    return {
        "AvailabilityZone": zone,
        "InstanceType": instance_type,
        "ProductDescription": kind,
        "SpotPrice": price,
        "Timestamp": dt.datetime(2026, 11, 22, 7, minute, tzinfo=dt.UTC),
    }


def test_spot_history_takes_each_zones_latest_price_and_the_median():
    history = [
        _spot("us-east-1a", "0.0700", 1),
        _spot("us-east-1a", "0.0650", 9),  # 1a's latest: 0.065
        _spot("us-east-1b", "0.0710", 5),
        _spot("us-east-1c", "0.0900", 3),
        _spot("us-east-1d", "0.0100", 8, kind="Windows"),
        _spot("us-east-1d", "0.5", 8, instance_type="p3.2xlarge"),
        _spot("us-east-1f", "0.0640", 2, kind="Linux/UNIX (Amazon VPC)"),
    ]
    assert median_spot_price(history, "c6i.xlarge") == (pytest.approx((0.065 + 0.071) / 2), 4)
    assert median_spot_price(history[:4], "c6i.xlarge") == (pytest.approx(0.071), 3)
    with pytest.raises(LivePriceUnavailable, match=re.escape("no Linux spot price for g5.xlarge")):
        median_spot_price(history, "g5.xlarge")


def test_describe_instance_types_answer_parses_to_a_shape():
    answer = [
        {
            "InstanceType": "g6.xlarge",
            "VCpuInfo": {"DefaultVCpus": 4, "DefaultCores": 2},
            "MemoryInfo": {"SizeInMiB": 16384},
            "GpuInfo": {"Gpus": [{"Name": "L4", "Manufacturer": "NVIDIA", "Count": 1}]},
        },
        {"InstanceType": "c6i.xlarge", "VCpuInfo": {"DefaultVCpus": 4}, "MemoryInfo": {"SizeInMiB": 8192}},
    ]
    assert shape_from_instance_types(answer, "g6.xlarge") == InstanceShape(vcpus=4, memory_gib=16, gpus=1)
    assert shape_from_instance_types(answer, "c6i.xlarge") == InstanceShape(vcpus=4, memory_gib=8, gpus=0)
    with pytest.raises(LivePriceUnavailable, match=re.escape("no vCPU and memory figures for c8g.xlarge")):
        shape_from_instance_types(answer, "c8g.xlarge")
    with pytest.raises(LivePriceUnavailable):
        shape_from_instance_types([{"InstanceType": "x.y", "VCpuInfo": {}}], "x.y")
