"""Which container runtime a cluster's nodes can have, per ParallelCluster OS: pure facts and checks.

The node bootstrap (bootstrap/on-node-configured.sh, ``runtimes_of_os``) keeps the same table, so a node
refuses what ``validate`` refuses; tests/unit/test_bootstrap_runtime.py checks that the two agree.

- enroot (with pyxis, which is off by default since 3.11.1): ParallelCluster's cookbook installs it into an
  AMI on Amazon Linux 2023, Ubuntu 20.04+, RHEL 8+ and Rocky 8+ (aws-parallelcluster-cookbook,
  cookbooks/aws-parallelcluster-platform/resources/enroot/enroot_{alinux2023,ubuntu20+,redhat8,rocky8}.rb,
  run by recipes/install.rb), but only where NVIDIA software is enabled at build time: so in the official AMIs
  (since 3.11.0), not in ``pcluster build-image`` AMIs by default (Build.Installation.NvidiaSoftware). Rocky
  has no official AMI, so it is not counted on there.
- apptainer: from its release package (github.com/apptainer/apptainer/releases: x86_64 .rpm and amd64 .deb
  only), pinned by version and sha256, where the package's dependencies (fakeroot, uidmap) come from the OS's
  own signed repositories: Ubuntu's, and Rocky's with EPEL (epel-release is in Rocky's extras). Not on Amazon
  Linux 2023 (no apptainer package, no EPEL) nor RHEL (fakeroot is only in EPEL, which RHEL can add only by
  downloading epel-release unverified).
- docker: the OS's package (docker on Amazon Linux 2023, docker.io on Ubuntu, docker-ce from Docker's signed
  repository on RHEL and Rocky).
- podman: the OS's own package (Ubuntu's universe; RHEL's and Rocky's AppStream), run rootless by the login user:
  no daemon, and a task's container stays in the task's cgroups, so Slurm's memory and CPU limits hold for it
  (docker's containers run under dockerd, outside them). Amazon Linux 2023's repositories have no podman.
  It is what the sandbox runs containers with (Debian's podman).
"""

from __future__ import annotations

import re

# The first one is the OS's default.
RUNTIMES_BY_OS: dict[str, tuple[str, ...]] = {
    "alinux2023": ("enroot", "docker"),
    "ubuntu2204": ("enroot", "docker", "apptainer", "podman"),
    "ubuntu2404": ("enroot", "docker", "apptainer", "podman"),
    "rhel8": ("enroot", "docker", "podman"),
    "rhel9": ("enroot", "docker", "podman"),
    "rocky8": ("docker", "apptainer", "podman"),
    "rocky9": ("docker", "apptainer", "podman"),
}

_WHY_NOT = {
    ("enroot", "rocky"): "ParallelCluster has no Rocky AMI that ships enroot",
    ("apptainer", "alinux"): "no apptainer package, no EPEL, and apptainer's release RPM is built for EL8/EL9",
    ("apptainer", "rhel"): "RHEL has fakeroot, which apptainer's release RPM needs, only in EPEL",
    ("podman", "alinux"): "Amazon Linux 2023's repositories have no podman package",
}

# Graviton families (m7g, c6gn, r8gd, g5g, hpc7g, im4gn, is4gen, a1): the letter g right after the generation.
_ARM_TYPE_RE = re.compile(r"^(a1|[a-z]+[0-9]+g[a-z]*)\.[a-z0-9-]+$")


def default_runtime(os_name: str) -> str | None:
    """The runtime a project with a container gets on ``os_name``; None: clustertools does not know the OS."""
    allowed = RUNTIMES_BY_OS.get(os_name)
    return allowed[0] if allowed else None


def resolve_runtime(os_name: str, asked: str | None) -> str:
    """The runtime for a container on ``os_name``: ``asked``, else the OS's default. ValueError says in one line
    why it cannot work there and what does."""
    allowed = RUNTIMES_BY_OS.get(os_name)
    if allowed is None:
        known = ", ".join(sorted(RUNTIMES_BY_OS))
        raise ValueError(
            f"clustertools does not know which container runtime {os_name} can have; a container runs on {known}"
        )
    runtime = asked or allowed[0]
    if runtime not in allowed:
        why = next(
            (text for (name, family), text in _WHY_NOT.items() if name == runtime and os_name.startswith(family)),
            f"{runtime} is not available there",
        )
        choices = f"{', '.join(allowed[:-1])} or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
        raise ValueError(f"{runtime} cannot run on {os_name} ({why}): use {choices}")
    return runtime


def apptainer_arch_problem(instance_types: list[str]) -> str | None:
    """Apptainer's release packages are x86_64 only: the Graviton (arm64) types among ``instance_types``."""
    arm = [t for t in instance_types if _ARM_TYPE_RE.fullmatch(t)]
    if not arm:
        return None
    return (
        f"apptainer has release packages for x86_64 only, and {', '.join(arm)} "
        f"{'is' if len(arm) == 1 else 'are'} Graviton (arm64): use enroot or docker, or x86_64 instance types"
    )
