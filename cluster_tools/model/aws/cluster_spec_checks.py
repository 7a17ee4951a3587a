"""Checks of the ``parallelcluster:`` section against what is installed and shipped: the ParallelCluster
release (its OSes, the ones it has no AMI for, its allocation strategies), clustertools' node bootstrap
(the OSes it can set up) and the price table (each instance type's vCPUs).

``validate`` and ``up`` run them, before anything is rendered or sent; loading a project does not, so
``status`` or ``results`` keep working on a project whose OS a newer ParallelCluster dropped. Pure: the
release's matrix comes in as a ``PclusterSupport`` (cluster_tools.model.aws.pcluster_support reads the installed one),
instance sizes as a function (cluster_tools.model.cost.pricing's table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cluster_tools.model.aws.cluster_spec import ClusterSpec, QueueSpec
from cluster_tools.model.aws.job_fit import ShapeOf
from cluster_tools.model.aws.pcluster_support import PclusterSupport, known_strategies, strategy_misfit

# The OSes bootstrap/on-node-configured.sh sets up (its detect_os); every node runs it as OnNodeConfigured,
# so on any other OS it exits non-zero and ParallelCluster rolls the cluster back. A test keeps the two in step.
BOOTSTRAP_OSES = ("alinux2023", "ubuntu2204", "ubuntu2404", "rhel8", "rhel9", "rocky8", "rocky9")


@dataclass(frozen=True)
class SpecFinding:
    """One finding about the section; ``loc`` is the key's path under ``parallelcluster:``."""

    level: Literal["error", "note"]
    loc: tuple[str | int, ...]
    message: str
    hint: str | None = None


def check_cluster_spec(spec: ClusterSpec, support: PclusterSupport, shape_of: ShapeOf) -> list[SpecFinding]:
    """Every finding, in the section's order. ``shape_of``: an instance type's (vCPUs, memory GiB), None when
    unknown (cluster_tools.model.cost.pricing.shipped_instance_shape, as job_fit uses it)."""
    findings = _os_findings(spec, support)
    for index, queue in enumerate(spec.queues):
        findings += _strategy_findings(index, queue, support)
        findings += _vcpu_findings(index, queue, shape_of)
    return findings


def usable_oses(support: PclusterSupport) -> list[str]:
    """The OSes a clustertools cluster can run, in ParallelCluster's order, those needing an AMI marked."""
    return [
        f"{name} (with custom_ami)" if name in support.custom_ami_oses else name
        for name in support.oses
        if name in BOOTSTRAP_OSES
    ]


def _os_findings(spec: ClusterSpec, support: PclusterSupport) -> list[SpecFinding]:
    name, usable = spec.os, ", ".join(usable_oses(support))
    if name not in support.oses:
        return [
            SpecFinding(
                "error",
                ("os",),
                f"{name!r} is not an OS of ParallelCluster {support.version}; use one of {usable}",
                "the OS list changes between ParallelCluster releases",
            )
        ]
    if name not in BOOTSTRAP_OSES:
        return [
            SpecFinding(
                "error",
                ("os",),
                f"{name} is not one clustertools' node bootstrap sets up "
                f"(bootstrap/on-node-configured.sh runs on every node and would fail there); use one of "
                f"{usable}",
                "the bootstrap installs conda and the container runtime per OS family",
            )
        ]
    if name in support.custom_ami_oses and spec.custom_ami is None:
        public_ami = [o for o in support.oses if o in BOOTSTRAP_OSES and o not in support.custom_ami_oses]
        return [
            SpecFinding(
                "error",
                ("os",),
                f"ParallelCluster {support.version} publishes no AMI for {name}: "
                f"set parallelcluster.custom_ami to one built for it, or use one of {', '.join(public_ami)}",
                f"build it with `pcluster build-image`; its nodes log in as {support.oses[name]}",
            )
        ]
    return []


_STRATEGY_HINT = "or drop allocation_strategy: the template then picks one for the queue's capacity type"


def _strategy_findings(index: int, queue: QueueSpec, support: PclusterSupport) -> list[SpecFinding]:
    strategy, capacity = queue.allocation_strategy, queue.capacity_type
    if strategy is None:
        return []
    known = known_strategies(support.allocation_strategies)
    loc = ("queues", index, "allocation_strategy")
    if strategy not in known:
        return [
            SpecFinding(
                "error",
                loc,
                f"{strategy!r} is not an allocation strategy of ParallelCluster "
                f"{support.version}; use one of {', '.join(known)}",
                _STRATEGY_HINT,
            )
        ]
    allowed = strategy_misfit(support.allocation_strategies, capacity, strategy) if capacity else None
    if allowed is not None:
        return [
            SpecFinding(
                "error",
                loc,
                f"{strategy} does not apply to {capacity} queues (ParallelCluster "
                f"{support.version}); use one of {', '.join(allowed)}",
                _STRATEGY_HINT,
            )
        ]
    return []  # without capacity_type the template chooses it; the rendered config is checked as well


def _vcpu_findings(index: int, queue: QueueSpec, shape_of: ShapeOf) -> list[SpecFinding]:
    """ParallelCluster's InstancesCPUValidator refuses types of different vCPUs in one compute resource,
    but only at create time, after asking EC2; the price table knows most types' vCPUs offline."""
    if len(queue.instance_types) < 2:
        return []
    loc = ("queues", index, "instance_types")
    shapes = {name: shape_of(name) for name in queue.instance_types}
    by_count: dict[int, list[str]] = {}
    for name, shape in shapes.items():
        if shape is not None:
            by_count.setdefault(shape[0], []).append(name)
    if len(by_count) > 1:
        groups = "; ".join(f"{count} vCPUs: {', '.join(names)}" for count, names in by_count.items())
        return [
            SpecFinding(
                "error",
                loc,
                f"the instance types of one queue must have the same vCPUs ({groups})",
                "ParallelCluster refuses the cluster otherwise: split them into queues of one size",
            )
        ]
    unknown = [name for name, shape in shapes.items() if shape is None]
    if unknown:
        return [
            SpecFinding(
                "note",
                loc,
                f"equal vCPUs could not be checked: {', '.join(unknown)} not in "
                "clustertools' price table (cluster_tools/data/prices.json); ParallelCluster checks it "
                "when `up` creates the cluster",
            )
        ]
    return []
