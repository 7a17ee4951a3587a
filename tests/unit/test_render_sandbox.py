"""The sandbox's slurm.conf and sshd_config are pure renders, compared with golden files."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from cluster_tools.render.sandbox import SandboxPaths, SandboxSpec, render_slurm_conf, render_sshd_config
from cluster_tools.render.templates import render_template
from tests.helpers import assert_golden

SPEC = SandboxSpec(
    paths=SandboxPaths(Path("/state/sandbox"), runtime=Path("/tmp/clustertools-1000-abc")), user="alice", cpus=2, real_memory_mb=24105,
    slurmctld_port=16817, slurmd_port=16818, ssh_port=16822, max_array_size=11, max_job_count=100000,
    min_job_age=10, node_env={"SLURM_CONF": "/state/sandbox/etc/slurm.conf", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
)


def test_slurm_conf_matches_golden():
    assert_golden("sandbox_slurm.conf", render_slurm_conf(SPEC))


def test_sshd_config_matches_golden():
    assert_golden("sandbox_sshd_config", render_sshd_config(SPEC))


def test_the_limits_that_tests_rely_on_are_set():
    text = render_slurm_conf(SPEC)
    assert "MaxArraySize=11\n" in text and "MinJobAge=10\n" in text and "MaxJobCount=100000\n" in text
    assert "AccountingStorageType=accounting_storage/none" in text  # like a default ParallelCluster


def test_sshd_listens_on_loopback_only_with_keys_only():
    text = render_sshd_config(SPEC)
    assert "ListenAddress 127.0.0.1\n" in text
    assert "PasswordAuthentication no" in text and "AllowUsers alice" in text


def test_a_missing_template_value_is_an_error_not_empty_text():
    with pytest.raises(jinja2.UndefinedError):
        render_template("sandbox/slurm.conf.j2", user="x")
