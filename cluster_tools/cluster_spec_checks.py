"""Checks of the ``parallelcluster:`` section against what is installed and shipped: the ParallelCluster
release (its OSes and the ones it has no AMI for) and clustertools' node bootstrap (the OSes it can set up).

``validate`` and ``up`` run them, before anything is rendered or sent; loading a project does not, so
``status`` or ``results`` keep working on a project whose OS a newer ParallelCluster dropped. Pure: the
release's matrix comes in as a ``PclusterSupport`` (cluster_tools.pcluster_support reads the installed one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cluster_tools.cluster_spec import ClusterSpec
from cluster_tools.pcluster_support import PclusterSupport

# The OSes bootstrap/on-node-configured.sh sets up (its detect_os); every node runs it as OnNodeConfigured,
# so on any other OS it exits non-zero and ParallelCluster rolls the cluster back. A test keeps the two in step.
BOOTSTRAP_OSES = ("alinux2023", "ubuntu2204", "ubuntu2404", "rhel9", "rocky9")


@dataclass(frozen=True)
class SpecFinding:
    """One finding about the section; ``loc`` is the key's path under ``parallelcluster:``."""

    level: Literal["error", "note"]
    loc: tuple[str | int, ...]
    message: str
    hint: str | None = None


def check_cluster_spec(spec: ClusterSpec, support: PclusterSupport) -> list[SpecFinding]:
    """Every finding, in the section's order."""
    return _os_findings(spec, support)


def usable_oses(support: PclusterSupport) -> list[str]:
    """The OSes a clustertools cluster can run, in ParallelCluster's order, those needing an AMI marked."""
    return [f"{name} (with custom_ami)" if name in support.custom_ami_oses else name
            for name in support.oses if name in BOOTSTRAP_OSES]


def _os_findings(spec: ClusterSpec, support: PclusterSupport) -> list[SpecFinding]:
    name, usable = spec.os, ", ".join(usable_oses(support))
    if name not in support.oses:
        return [SpecFinding("error", ("os",), f"{name!r} is not an OS of ParallelCluster {support.version}; "
                            f"use one of {usable}", "the OS list changes between ParallelCluster releases")]
    if name not in BOOTSTRAP_OSES:
        return [SpecFinding("error", ("os",), f"{name} is not one clustertools' node bootstrap sets up "
                            f"(bootstrap/on-node-configured.sh runs on every node and would fail there); use one of "
                            f"{usable}", "the bootstrap installs conda and the container runtime per OS family")]
    if name in support.custom_ami_oses and spec.custom_ami is None:
        return [SpecFinding("error", ("os",), f"ParallelCluster {support.version} publishes no AMI for {name}: "
                            "set parallelcluster.custom_ami to one built for it, or use one of "
                            f"{', '.join(o for o in usable_oses(support) if '(' not in o)}",
                            f"build it with `pcluster build-image`; its nodes log in as {support.oses[name]}")]
    return []
