"""`clustertools start` where it never applies (issue 17, item 1): one line saying so. The sandbox's start runs
for real in tests/integration/test_autostop_sandbox.py, a ParallelCluster one against moto's EC2 in
tests/integration/test_start_parallelcluster.py."""

from __future__ import annotations

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.services.clusters.lifecycle_start import start_cluster
from cluster_tools.store.state_dir import StateDir


def never_connect(record):
    raise AssertionError("nothing is reached for a cluster start does not handle")


def test_a_cluster_reached_over_ssh_is_never_stopped_so_never_started(tmp_path):
    record = ClusterRecord(name="hpc", host="login.example.org", user="me", known_hosts=tmp_path / "kh")
    with pytest.raises(ConfigError, match="clustertools did not create: it never stops it"):
        start_cluster(StateDir(tmp_path), record, None, never_connect, environ={})
