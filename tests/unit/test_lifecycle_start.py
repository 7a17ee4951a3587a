"""`clustertools start` where it is not built or never applies (issue 17, item 1): one line saying so, and how.
The sandbox's start runs for real in tests/integration/test_autostop_sandbox.py."""

from __future__ import annotations

import pytest

from cluster_tools.clusters import ClusterRecord
from cluster_tools.errors import ClusterToolsError, ConfigError
from cluster_tools.services.lifecycle_start import start_cluster
from cluster_tools.state import StateDir


def never_connect(record):
    raise AssertionError("nothing is reached for a cluster start does not handle")


def test_a_parallelcluster_cluster_is_not_started_yet_and_the_error_says_how_by_hand(tmp_path):
    record = ClusterRecord(name="study", provider="parallelcluster", host="192.0.2.10", user="ec2-user",
                           known_hosts=tmp_path / "kh", region="us-east-1")
    with pytest.raises(ClusterToolsError) as info:
        start_cluster(StateDir(tmp_path), record, None, never_connect, environ={})
    assert info.value.one_line() == (
        "starting a stopped ParallelCluster cluster (study) is not built yet (hint: start its head node's EC2 "
        "instance, then `pcluster update-compute-fleet -n study --status START_REQUESTED`; `clustertools describe` "
        "shows its state)")


def test_a_cluster_reached_over_ssh_is_never_stopped_so_never_started(tmp_path):
    record = ClusterRecord(name="hpc", host="login.example.org", user="me", known_hosts=tmp_path / "kh")
    with pytest.raises(ConfigError, match="clustertools did not create: it never stops it"):
        start_cluster(StateDir(tmp_path), record, None, never_connect, environ={})
