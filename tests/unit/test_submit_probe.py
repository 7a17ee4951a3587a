"""The submit probe: a missing or failing Slurm command is an error naming it, never Slurm's defaults."""

from __future__ import annotations

import subprocess

import pytest

from cluster_tools.errors import ClusterToolsError
from cluster_tools.services.runs.submit import _probe
from cluster_tools.transport.ssh import RemoteResult


class LocalShell:
    """Runs the probe's command line in a real bash whose PATH holds only the given fake commands (and wc)."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir

    def run(self, command, **kwargs):
        done = subprocess.run(
            ["/bin/bash", "-c", command], capture_output=True, env={"PATH": str(self.bin_dir), "HOME": "/home/ec2-user"}
        )
        return RemoteResult(command, done.returncode, done.stdout, done.stderr)


def _fake(bin_dir, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + script)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path):
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("wc", "cat"):
        (directory / tool).symlink_to(f"/usr/bin/{tool}")
    return directory


def test_the_probe_reads_home_limits_and_queue(bin_dir) -> None:
    _fake(bin_dir, "scontrol", "printf 'MaxArraySize            = 11\\nMaxJobCount             = 500\\n'\n")
    _fake(bin_dir, "squeue", "printf '1\\n2\\n3\\n'\n")
    _fake(bin_dir, "sinfo", "printf 'cpu*|4|3214|(null)\\ngpu|4|6428|(null)\\n'\n")
    home, limits, queued, partitions = _probe(LocalShell(bin_dir))
    assert (home, limits.max_array_size, limits.max_job_count, queued) == ("/home/ec2-user", 11, 500, 3)
    assert partitions.default == "cpu" and set(partitions.nodes) == {"cpu", "gpu"}


def test_a_failing_sinfo_is_an_error_not_a_cluster_without_nodes(bin_dir) -> None:
    _fake(bin_dir, "scontrol", "echo 'MaxArraySize = 1001'\n")
    _fake(bin_dir, "squeue", "true\n")
    _fake(bin_dir, "sinfo", "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1\n")
    with pytest.raises(ClusterToolsError, match=r"exit 1.*Unable to contact slurm controller"):
        _probe(LocalShell(bin_dir))


def test_a_missing_scontrol_is_named(bin_dir) -> None:
    _fake(bin_dir, "squeue", "true\n")
    with pytest.raises(ClusterToolsError) as caught:
        _probe(LocalShell(bin_dir))
    assert "exit 127" in caught.value.message and "`scontrol` is not on the head node's PATH" in caught.value.hint


def test_a_failing_squeue_is_an_error_not_an_empty_queue(bin_dir) -> None:
    """Before: the pipeline ended in `wc`, so a dead squeue read as 0 jobs and the headroom check passed."""
    _fake(bin_dir, "scontrol", "echo 'MaxArraySize = 1001'\n")
    _fake(bin_dir, "squeue", "echo 'squeue: error: Unable to contact slurm controller' >&2; exit 1\n")
    with pytest.raises(ClusterToolsError, match="Unable to contact slurm controller"):
        _probe(LocalShell(bin_dir))


def test_a_config_without_limits_is_refused(bin_dir) -> None:
    _fake(bin_dir, "scontrol", "echo 'nothing useful'\n")
    _fake(bin_dir, "squeue", "true\n")
    _fake(bin_dir, "sinfo", "true\n")
    with pytest.raises(ClusterToolsError, match="limits are unknown"):
        _probe(LocalShell(bin_dir))
