"""Start-up of `clustertools status` (issue 16, item 4): what reading a run needs, and nothing else. The
project's models (config: cluster, bootstrap and storage specs), boto3 (only when the head node does not
answer and the records come from S3), jinja2 and rich stay unimported."""

from __future__ import annotations

import subprocess
import sys

STATUS_PATH = (
    "cluster_tools.cli",
    "cluster_tools.cli.run_cmds",
    "cluster_tools.api.run_api",
    "cluster_tools.services.runs.run_follow",
    "cluster_tools.services.remote.cluster_shell",
    "cluster_tools.model.project.project_file",
)
NOT_NEEDED = (
    "cluster_tools.model.project.project_config",
    "cluster_tools.model.aws.cluster_spec",
    "cluster_tools.model.project.bootstrap_settings",
    "boto3",
    "botocore",
    "jinja2",
    "rich",
)


def test_reading_a_run_imports_none_of_what_it_does_not_use():
    probe = (
        f"import importlib, sys\nfor name in {STATUS_PATH!r}: importlib.import_module(name)\n"
        f"print(sorted(n for n in {NOT_NEEDED!r} if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_package_face_and_the_cli_load_no_ssh_or_aws_library_until_used():
    """`from cluster_tools import Project` and every command's start: paramiko (~90 ms) and boto3 are
    loaded by what reaches a cluster or S3, not by the defaults that name how it would be reached."""
    probe = (
        "import sys\nfrom cluster_tools import Project, Run\nimport cluster_tools.cli\n"
        "print(sorted(n for n in ('paramiko', 'boto3', 'botocore', 'cryptography') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
