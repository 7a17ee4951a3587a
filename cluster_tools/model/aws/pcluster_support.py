"""What the installed ParallelCluster supports, read from its package: the OSes and their login users,
the OSes it publishes no AMI for, and which allocation strategies each capacity type takes.

These change between releases (3.10 still had alinux2, centos7 and ubuntu2004; 3.16 has ubuntu2404),
so clustertools keeps no list of its own. Nothing here calls AWS or imports ``pcluster.lib``.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class PclusterSupport:
    """One ParallelCluster release's matrix, as the checks of ``validate`` use it (tests build their own)."""

    version: str
    oses: Mapping[str, str]  # OS name -> its login user (pcluster.constants.OS_MAPPING)
    custom_ami_oses: frozenset[str]  # no official AMI: Image.CustomAmi is required (pcluster.constants.PRIVATE_OSES)
    allocation_strategies: Mapping[str, tuple[str, ...]]  # capacity type -> the strategies it takes


def supported_oses() -> dict[str, str]:
    """OS name -> default login user: pcluster.constants SUPPORTED_OSES and OS_MAPPING[os]["user"]."""
    from pcluster.constants import OS_MAPPING, SUPPORTED_OSES

    return {name: OS_MAPPING[name]["user"] for name in SUPPORTED_OSES}


def login_user(os_name: str) -> str:
    """The user ParallelCluster's nodes of ``os_name`` log in as (ec2-user, ubuntu, rocky); ValueError if unknown."""
    oses = supported_oses()
    if os_name not in oses:
        raise ValueError(
            f"{os_name!r} is not an OS of ParallelCluster {pcluster_version()}: choose one of {', '.join(oses)}"
        )
    return oses[os_name]


def custom_ami_oses() -> frozenset[str]:
    """OSes ParallelCluster publishes no AMI for (its OsCustomAmiValidator asks for Image.CustomAmi)."""
    from pcluster.constants import PRIVATE_OSES

    return frozenset(PRIVATE_OSES)


@functools.lru_cache(maxsize=1)  # read from the installed package, which cannot change under us
def allocation_strategies() -> dict[str, tuple[str, ...]]:
    """Capacity type (SPOT, ONDEMAND) -> allocation strategies ParallelCluster takes for it.

    The names are its AllocationStrategy enum (what SlurmQueueSchema accepts); which capacity takes which
    is what its own InstancesAllocationStrategyValidator says, asked for every pair (it is pure, no AWS).
    Costs ~150 ms (pcluster.config), so only ``validate`` and ``up`` call it.
    """
    from pcluster.config.cluster_config import AllocationStrategy, CapacityType
    from pcluster.validators.instances_validators import InstancesAllocationStrategyValidator

    def accepted(capacity: CapacityType, strategy: AllocationStrategy) -> bool:
        return not InstancesAllocationStrategyValidator().execute(
            compute_resource_name="clustertools", capacity_type=capacity, allocation_strategy=strategy
        )

    return {
        capacity.value: tuple(s.value for s in AllocationStrategy if accepted(capacity, s))
        for capacity in (CapacityType.SPOT, CapacityType.ONDEMAND)
    }


def known_strategies(strategies: Mapping[str, Collection[str]]) -> list[str]:
    """Every allocation strategy of ``strategies`` (as ``allocation_strategies()`` gives them), in its order."""
    return list(dict.fromkeys(name for names in strategies.values() for name in names))


def strategy_misfit(
    strategies: Mapping[str, Collection[str]], capacity: str, strategy: object
) -> tuple[str, ...] | None:
    """The strategies ``capacity`` takes, when ``strategy`` is one ParallelCluster knows but not for ``capacity``;
    None when it fits (or is unknown: the schema names an unknown one)."""
    allowed = strategies.get(capacity)
    if allowed is None or strategy not in known_strategies(strategies) or strategy in allowed:
        return None
    return tuple(allowed)


def pcluster_version() -> str:
    return metadata.version("aws-parallelcluster")


def installed_support() -> PclusterSupport:
    """The matrix of the ParallelCluster installed next to clustertools."""
    return PclusterSupport(
        version=pcluster_version(),
        oses=supported_oses(),
        custom_ami_oses=custom_ami_oses(),
        allocation_strategies=allocation_strategies(),
    )
