"""`validate` against the installed ParallelCluster: its OSes (and the ones it has no AMI for), the OSes
the node bootstrap sets up, its allocation strategies, and equal vCPUs within a queue. Each refusal is
one line naming the key's line in clustertools.yaml."""

from __future__ import annotations

import pytest
import yaml

from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_spec_checks import BOOTSTRAP_OSES, check_cluster_spec, usable_oses
from cluster_tools.model.aws.pcluster_support import (
    PclusterSupport,
    installed_support,
    pcluster_version,
    supported_oses,
)
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.render.pcluster_config import available_templates
from cluster_tools.services.aws.cluster_config import validate_project_cluster
from cluster_tools.store.shipped_files import cluster_config_dir
from tests.unit.test_cluster_config import MINIMAL  # one minimal project for both files

OS_LINE = 11  # "  os: ..." appended to MINIMAL
AMI = "ami-0123456789abcdef0"
# ParallelCluster 3.10's matrix (aws-parallelcluster v3.10.0, cli/src/pcluster/constants.py): the pinned range
# starts there, with OSes 3.16 dropped.
PCLUSTER_3_10 = PclusterSupport(
    version="3.10.0",
    oses={
        "alinux2": "ec2-user",
        "alinux2023": "ec2-user",
        "ubuntu2004": "ubuntu",
        "ubuntu2204": "ubuntu",
        "rhel8": "ec2-user",
        "rocky8": "rocky",
        "rhel9": "ec2-user",
        "rocky9": "rocky",
    },
    custom_ami_oses=frozenset({"rocky8", "rocky9"}),
    allocation_strategies={
        "SPOT": ("lowest-price", "capacity-optimized", "price-capacity-optimized"),
        "ONDEMAND": ("lowest-price", "prioritized"),
    },
)


def no_sizes(instance_type: str) -> None:
    """No instance sizes: the vCPU check has nothing to compare."""
    return None


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        validate_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32")
    return info.value.one_line()


def test_rocky_without_a_custom_ami_is_refused_naming_its_line_and_user():
    message = refusal(MINIMAL + "  os: rocky9\n")
    assert message.startswith(
        f"clustertools.yaml:{OS_LINE}: parallelcluster.os: ParallelCluster "
        f"{pcluster_version()} publishes no AMI for rocky9: set parallelcluster.custom_ami"
    )
    assert "(hint: build it with `pcluster build-image`; its nodes log in as rocky)" in message
    assert "\n" not in message


@pytest.mark.parametrize("template", available_templates(cluster_config_dir()))
def test_rocky_with_a_custom_ami_renders_image_customami_and_passes_the_schema(template):
    rendered, problems = validate_project_cluster(
        parse_project(MINIMAL + f"  os: rocky9\n  custom_ami: {AMI}\n  template: {template}\n"),
        allowed_ip="203.0.113.7/32",
    )
    assert problems == []
    assert yaml.safe_load(rendered.yaml_text)["Image"] == {"Os": "rocky9", "CustomAmi": AMI}


def test_a_custom_ami_is_an_ami_id():
    with pytest.raises(ConfigError, match=r"clustertools.yaml:12: parallelcluster.custom_ami: an AMI id like"):
        parse_project(MINIMAL + "  os: rocky9\n  custom_ami: 'ami-1; rm -rf /'\n")


@pytest.mark.parametrize("os_name", ["rhel8", "rocky8"])
def test_the_8_releases_are_taken_now_that_the_node_bootstrap_sets_them_up(os_name):
    extra = f"  os: {os_name}\n" + (f"  custom_ami: {AMI}\n" if os_name.startswith("rocky") else "")
    project = parse_project(MINIMAL + extra)
    rendered, problems = validate_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert problems == [] and yaml.safe_load(rendered.yaml_text)["Image"]["Os"] == os_name


@pytest.mark.parametrize("os_name", ["alinux2", "centos7", "ubuntu2004", "windows"])
def test_an_os_the_installed_parallelcluster_lacks_is_refused(os_name):
    message = refusal(MINIMAL + f"  os: {os_name}\n")
    assert message.startswith(
        f"clustertools.yaml:{OS_LINE}: parallelcluster.os: '{os_name}' is not an OS of "
        f"ParallelCluster {pcluster_version()}; use one of alinux2023,"
    )


def test_a_hostile_os_is_refused_when_the_project_loads():
    with pytest.raises(ConfigError) as info:
        parse_project(MINIMAL + '  os: "alinux2023\\nHeadNode: {}"\n')
    assert info.value.one_line().startswith(
        f"clustertools.yaml:{OS_LINE}: parallelcluster.os: a ParallelCluster OS like"
    )


@pytest.mark.parametrize("template", available_templates(cluster_config_dir()))
@pytest.mark.parametrize("os_name", sorted(supported_oses()))
def test_every_os_of_the_installed_parallelcluster_validates_or_is_refused(os_name, template):
    ami = f"  custom_ami: {AMI}\n" if os_name in installed_support().custom_ami_oses else ""
    project = parse_project(MINIMAL + f"  os: {os_name}\n{ami}  template: {template}\n")
    if os_name not in BOOTSTRAP_OSES:
        with pytest.raises(ConfigError, match="node bootstrap"):
            validate_project_cluster(project, allowed_ip="203.0.113.7/32")
        return
    rendered, problems = validate_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert problems == [] and yaml.safe_load(rendered.yaml_text)["Image"]["Os"] == os_name


def test_an_older_releases_matrix_is_read_not_assumed():
    # With ParallelCluster 3.10 installed, its extra OSes are refused by the bootstrap rule, and 3.16's
    # ubuntu2404 is not offered at all.
    spec = parse_project(MINIMAL).parallelcluster
    assert usable_oses(PCLUSTER_3_10) == [
        "alinux2023",
        "ubuntu2204",
        "rhel8",
        "rocky8 (with custom_ami)",
        "rhel9",
        "rocky9 (with custom_ami)",
    ]
    for name in ("alinux2", "ubuntu2004"):
        with_os = spec.model_copy(update={"os": name, "custom_ami": AMI})
        [finding] = check_cluster_spec(with_os, PCLUSTER_3_10, no_sizes)
        assert finding.loc == ("os",) and "node bootstrap" in finding.message
    [finding] = check_cluster_spec(spec.model_copy(update={"os": "ubuntu2404"}), PCLUSTER_3_10, no_sizes)
    assert finding.message.startswith("'ubuntu2404' is not an OS of ParallelCluster 3.10.0")
    assert check_cluster_spec(spec, PCLUSTER_3_10, no_sizes) == []
    # 3.10 knew no capacity-optimized-prioritized: refused with that release, taken with the installed one
    queue = spec.queues[0].model_copy(update={"allocation_strategy": "capacity-optimized-prioritized"})
    [finding] = check_cluster_spec(spec.model_copy(update={"queues": [queue]}), PCLUSTER_3_10, no_sizes)
    assert finding.loc == ("queues", 0, "allocation_strategy") and "not an allocation strategy of" in finding.message


QUEUE = "    - name: spot\n      instance_types: [c5.4xlarge]\n"
STRATEGY_LINE = 9  # "      allocation_strategy: ..." right after the queue's name


def with_queue(lines: str) -> str:
    assert QUEUE in MINIMAL
    return MINIMAL.replace(QUEUE, "    - name: spot\n" + lines)


@pytest.mark.parametrize(
    "capacity, strategy, expected",
    [
        (
            "ONDEMAND",
            "capacity-optimized",
            "capacity-optimized does not apply to ONDEMAND queues (ParallelCluster {v}); "
            "use one of lowest-price, prioritized",
        ),
        (
            "SPOT",
            "prioritized",
            "prioritized does not apply to SPOT queues (ParallelCluster {v}); use one of lowest-price, "
            "capacity-optimized, price-capacity-optimized, capacity-optimized-prioritized",
        ),
        (
            None,
            "cheapest-first",
            "'cheapest-first' is not an allocation strategy of ParallelCluster {v}; use one of "
            "lowest-price, capacity-optimized, price-capacity-optimized, "
            "capacity-optimized-prioritized, prioritized",
        ),
    ],
)
def test_allocation_strategies_are_the_installed_parallelclusters(capacity, strategy, expected):
    lines = f"      allocation_strategy: {strategy}\n      instance_types: [c5.4xlarge]\n"
    lines += f"      capacity_type: {capacity}\n" if capacity else ""
    message = refusal(with_queue(lines))
    assert message.startswith(
        f"clustertools.yaml:{STRATEGY_LINE}: parallelcluster.queues[0].allocation_strategy: "
        + expected.format(v=pcluster_version())
    ), message


def test_the_strategies_are_read_from_parallelcluster_not_from_a_list_of_ours():
    from pcluster.config.cluster_config import AllocationStrategy

    table = installed_support().allocation_strategies
    assert set(table) == {"SPOT", "ONDEMAND"}
    assert set(table["SPOT"]) | set(table["ONDEMAND"]) == {s.value for s in AllocationStrategy}
    assert "prioritized" not in table["SPOT"] and "capacity-optimized" not in table["ONDEMAND"]


@pytest.mark.parametrize("template", available_templates(cluster_config_dir()))
def test_a_strategy_that_misses_the_templates_capacity_is_caught_in_the_rendered_config(template):
    # No capacity_type: the template chooses it (SPOT for spot-cpu, ONDEMAND for ondemand-gpu).
    strategy = "prioritized" if template == "spot-cpu" else "capacity-optimized"
    project = parse_project(
        with_queue(f"      allocation_strategy: {strategy}\n      instance_types: [c5.4xlarge]\n")
        + f"  template: {template}\n"
    )
    _, problems = validate_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert problems == [
        f"Scheduling.SlurmQueues[0].AllocationStrategy: {strategy} does not apply to "
        f"{'SPOT' if template == 'spot-cpu' else 'ONDEMAND'} queues; use one of "
        + ", ".join(installed_support().allocation_strategies["SPOT" if template == "spot-cpu" else "ONDEMAND"])
    ]


def test_a_queue_whose_types_differ_in_vcpus_is_refused_naming_them():
    message = refusal(with_queue("      instance_types: [c6i.4xlarge, c5.4xlarge, c5.2xlarge, m5.2xlarge]\n"))
    assert message == (
        "clustertools.yaml:9: parallelcluster.queues[0].instance_types: the instance types of one queue must have "
        "the same vCPUs (16 vCPUs: c6i.4xlarge, c5.4xlarge; 8 vCPUs: c5.2xlarge, m5.2xlarge) (hint: ParallelCluster "
        "refuses the cluster otherwise: split them into queues of one size)"
    )


def test_a_type_missing_from_the_price_table_is_a_note_not_a_refusal():
    rendered, problems = validate_project_cluster(
        parse_project(with_queue("      instance_types: [c6i.4xlarge, c6in.4xlarge]\n")), allowed_ip="203.0.113.7/32"
    )
    assert problems == []
    assert rendered.notes == (
        "clustertools.yaml:9: parallelcluster.queues[0].instance_types: equal vCPUs could not be checked: "
        "c6in.4xlarge not in clustertools' price table (cluster_tools/data/prices.json); ParallelCluster checks it "
        "when `up` creates the cluster",
    )
    # ... but types the table knows to differ are refused whatever else the queue lists
    mixed = with_queue("      instance_types: [c6in.4xlarge, c6i.4xlarge, c6i.xlarge]\n")
    assert "must have the same vCPUs" in refusal(mixed)


def test_every_error_of_the_section_is_on_the_one_line():
    message = refusal(with_queue("      instance_types: [c6i.4xlarge, c6i.xlarge]\n") + "  os: rocky9\n")
    assert "parallelcluster.os: ParallelCluster" in message and "queues[0].instance_types: the instance" in message
    assert message.endswith("(hint: fix them in clustertools.yaml (parallelcluster:))") and "\n" not in message
