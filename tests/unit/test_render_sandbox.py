"""The sandbox's sshd_config is a pure render, compared with a golden file (slurm.conf: test_sandbox_cluster)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from cluster_tools.render.sandbox_layout import SandboxPaths, SandboxSpec, render_sshd_config
from cluster_tools.render.templates import render_template
from tests.helpers import assert_golden

SPEC = SandboxSpec(
    paths=SandboxPaths(Path("/state/sandbox"), runtime=Path("/tmp/clustertools-1000-abc")),
    user="ec2-user",
    ssh_port=16822,
    node_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
)


def test_sshd_config_matches_golden():
    assert_golden("sandbox_sshd_config", render_sshd_config(SPEC))


def test_sshd_listens_on_loopback_only_with_keys_only():
    text = render_sshd_config(SPEC)
    assert "ListenAddress 127.0.0.1\n" in text
    assert "PasswordAuthentication no" in text and "AllowUsers ec2-user" in text
    assert "PermitRootLogin no" in text and "SLURM_CONF" not in text  # found as a real node finds it


def test_a_missing_template_value_is_an_error_not_empty_text():
    with pytest.raises(jinja2.UndefinedError):
        render_template("sandbox/sshd_config.j2", user="x")
