"""The sandbox's ParallelCluster-like node, run for real: head-namespace.sh over a prepared layout, and
node-namespace.sh giving a node its own hostname and cgroups. Needs root (as the sandbox does)."""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

from cluster_tools.model.aws.pcluster_support import supported_oses
from cluster_tools.render.sandbox_node import cfnconfig, node_os
from cluster_tools.services.sandbox.sandbox_namespace import NamespaceLayout, free_uid, node_cgroup_dirs, prepare_layout
from cluster_tools.services.sandbox.sandbox_nodes import remove_cgroups
from cluster_tools.store.shipped_files import template_path

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root, as the sandbox does")
HEAD = template_path("sandbox/head-namespace.sh")
NODE = template_path("sandbox/node-namespace.sh")


def _layout(tmp_path: Path, os_name: str) -> tuple[NamespaceLayout, str, int]:
    os_ = node_os(os_name, supported_oses())
    uid = free_uid(Path("/etc/passwd").read_text(), os_.user)
    layout = NamespaceLayout(tmp_path / "ns")
    prepare_layout(
        layout,
        os_,
        uid,
        authorized_key="",
        slurm_files={"slurm.conf": "ClusterName=test\n"},
        cfnconfig=cfnconfig(node_type="HeadNode", stack_name="sandbox", region="us-east-1", user=os_.user),
    )
    return layout, os_.user, uid


def _as_user(layout: NamespaceLayout, user: str, uid: int, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` as the login user in the head node's namespace, started as sshd starts a command:
    bash -c with SSH_CLIENT set (Debian's bash then reads ~/.bashrc, as Amazon Linux's and Ubuntu's do)."""
    inner = (
        f"cd /home/{user} && exec setpriv --reuid={uid} --regid={uid} --clear-groups "
        f"env -i HOME=/home/{user} USER={user} SSH_CLIENT='127.0.0.1 1 22' "
        f"PATH=/usr/local/bin:/usr/bin:/bin:/usr/games bash -c {shlex.quote(script)}"
    )
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            str(HEAD),
            str(layout.root),
            "--",
            "bash",
            "-c",
            inner,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ubuntu_head_node_hides_slurm_from_a_non_login_shell(tmp_path: Path) -> None:
    layout, user, uid = _layout(tmp_path, "ubuntu2204")
    plain = _as_user(layout, user, uid, "id -un; sinfo --version")
    assert plain.returncode == 127, plain
    assert plain.stdout.strip() == "ubuntu" and "sinfo: command not found" in plain.stderr
    login = _as_user(
        layout,
        user,
        uid,
        "/bin/bash --login -c 'command -v sinfo; sinfo --version; cat /etc/parallelcluster/cfnconfig'",
    )
    assert login.returncode == 0, login
    assert login.stdout.splitlines()[0] == "/opt/slurm/bin/sinfo"
    assert "cfn_node_type=HeadNode" in login.stdout and "cfn_cluster_user=ubuntu" in login.stdout


def test_amazon_linux_head_node_finds_slurm_through_etc_bashrc(tmp_path: Path) -> None:
    layout, user, uid = _layout(tmp_path, "alinux2023")
    plain = _as_user(layout, user, uid, "id -un; command -v sinfo; ls -d /etc/slurm/slurm.conf /home/*")
    assert plain.returncode == 0, plain
    assert plain.stdout.split() == ["ec2-user", "/opt/slurm/bin/sinfo", "/etc/slurm/slurm.conf", "/home/ec2-user"]


def test_nothing_changes_outside_the_namespace(tmp_path: Path) -> None:
    before = {p: os.path.exists(p) for p in ("/opt/slurm", "/etc/parallelcluster", "/home/ec2-user")}
    layout, user, uid = _layout(tmp_path, "alinux2023")
    assert _as_user(layout, user, uid, "true").returncode == 0
    assert {p: os.path.exists(p) for p in before} == before
    assert Path("/usr/bin/sinfo").exists() and user not in Path("/etc/passwd").read_text().split(":")[:1]


def test_a_node_has_its_own_hostname_and_cgroup_root(tmp_path: Path) -> None:
    layout, _, _ = _layout(tmp_path, "alinux2023")
    cgroup = f"clustertools-test-{uuid.uuid4().hex[:8]}"
    parents = node_cgroup_dirs(cgroup, Path("/proc/self/cgroup").read_text())
    (tmp_path / "cgroups").write_text("".join(f"{c} {d}\n" for c, d in parents.items()))
    script = (
        "hostname; grep -E ':memory:' /proc/self/cgroup; cat /sys/fs/cgroup/memory/cgroup.procs | wc -l; "
        "touch /var/spool/slurmd/mine"
    )
    try:
        result = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "bash",
                str(HEAD),
                str(layout.root),
                "--",
                "bash",
                str(NODE),
                "queue1-dy-c5-1",
                str(tmp_path / "cgroups"),
                str(tmp_path / "spools"),
                "-",
                "--",
                "bash",
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result
        name, own, procs = result.stdout.split()
        assert name == "queue1-dy-c5-1" and own.endswith(":memory:/")
        assert int(procs) >= 1  # this node's processes alone, not the machine's
        assert os.uname().nodename != "queue1-dy-c5-1"
        # Its own /var/spool (slurmd's spool), this machine's untouched.
        assert (tmp_path / "spools" / "queue1-dy-c5-1" / "slurmd" / "mine").exists()
        assert not Path("/var/spool/slurmd/mine").exists()
    finally:
        assert remove_cgroups({c: str(d) for c, d in parents.items()}) == []
