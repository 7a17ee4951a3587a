"""The text that makes a sandbox node a ParallelCluster node of one OS."""

from __future__ import annotations

import pytest

from cluster_tools.model.aws.pcluster_support import supported_oses
from cluster_tools.render.sandbox_node import cfnconfig, node_os, user_dotfiles
from cluster_tools.services.sandbox.sandbox_namespace import free_uid, own_cgroup, with_entry

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "cloudsdk:x:1000:1000::/home/cloudsdk:/bin/bash\n"
    "nobody:x:65534:65534::/:/bin/false\n"
)


def test_the_os_list_and_users_come_from_parallelcluster() -> None:
    oses = supported_oses()
    assert oses["alinux2023"] == "ec2-user" and oses["ubuntu2204"] == "ubuntu"
    assert node_os("ubuntu2404", oses).family == "ubuntu" and node_os("rocky9", oses).user == "rocky"
    with pytest.raises(ValueError, match="alinux2023"):
        node_os("windows", oses)


def test_ubuntu_bashrc_returns_when_not_interactive() -> None:
    bashrc = user_dotfiles(node_os("ubuntu2204", supported_oses()))[".bashrc"]
    assert bashrc.index("*) return;;") < bashrc.index("HISTCONTROL")


def test_free_uid_skips_used_ids_and_keeps_an_existing_user() -> None:
    assert free_uid(PASSWD, "ec2-user") == 1001
    assert free_uid(PASSWD, "cloudsdk") == 1000


def test_with_entry_replaces_a_user_of_the_same_name() -> None:
    table = with_entry(
        PASSWD + "ec2-user:x:5:5::/x:/bin/sh", "ec2-user", "ec2-user:x:1001:1001::/home/ec2-user:/bin/bash\n"
    )
    assert table.count("ec2-user") == 2 and table.endswith("ec2-user:x:1001:1001::/home/ec2-user:/bin/bash\n")


def test_cfnconfig_of_a_compute_node_names_its_queue() -> None:
    text = cfnconfig(node_type="ComputeFleet", stack_name="sandbox", region="us-east-1", user="ec2-user", queue="q1")
    assert "cfn_node_type=ComputeFleet\n" in text and "cfn_scheduler_queue_name=q1\n" in text


def test_own_cgroup_reads_co_mounted_controllers() -> None:
    proc = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n"
    assert own_cgroup("memory", proc) == "/process_api/abc" and own_cgroup("cpuacct", proc) == ""
