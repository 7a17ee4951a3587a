"""The head node's bootstrap budget: the image pull and the conda solve run inside ParallelCluster's
HeadNodeBootstrapTimeout, so a project with either gets more time than the default, and can set its own."""

from __future__ import annotations

import pytest
import yaml

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import parse_project
from cluster_tools.render.pcluster_config import PCLUSTER_HEAD_NODE_BOOTSTRAP_S, available_templates
from cluster_tools.services.aws.cluster_config import render_project_cluster, validate_project_cluster
from cluster_tools.store.shipped_files import cluster_config_dir

HEADER = "name: study\nstorage:\n  output: s3://study-outputs/results\n"
SECTION = """\
parallelcluster:
  region: us-east-1
  subnet_id: subnet-0123456789abcdef0
  shared_storage: {type: efs}
  queues:
    - name: spot
      instance_types: [c5.4xlarge]
"""
IMAGE = "job:\n  container: docker://ghcr.io/acme/seg:1.0\n"
ENV = (
    "bootstrap:\n  miniforge_url: https://github.com/conda-forge/miniforge/releases/download/24.11.3-0/"
    "Miniforge3-Linux-x86_64.sh\n  miniforge_sha256: " + "0f" * 32 + "\n  env_file: environment.yml\n"
)
MINIFORGE_ONLY = ENV.replace("  env_file: environment.yml\n", "")


def timeout_of(text: str) -> int | None:
    config = yaml.safe_load(render_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32").yaml_text)
    return config.get("DevSettings", {}).get("Timeouts", {}).get("HeadNodeBootstrapTimeout")


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("", None),  # nothing slow on the head node: ParallelCluster's own default stays
        (MINIFORGE_ONLY, None),  # Miniforge alone installs in a minute or two
        ("job:\n  container: /shared/images/seg.sif\n", None),  # an image file already there: nothing is pulled
        (IMAGE, 2100 + 3600),
        (ENV, 2100 + 1800),
        (IMAGE + ENV, 2100 + 3600 + 1800),
    ],
)
def test_an_image_or_an_environment_raises_the_head_nodes_budget(extra, expected):
    assert timeout_of(HEADER + extra + SECTION) == expected


@pytest.mark.parametrize("value", [900, 43200])
def test_the_project_sets_its_own_budget(value):
    assert timeout_of(HEADER + SECTION + f"  head_node_bootstrap_timeout: {value}\n") == value
    assert timeout_of(HEADER + IMAGE + ENV + SECTION + f"  head_node_bootstrap_timeout: {value}\n") == value


@pytest.mark.parametrize(
    "value, message",
    [
        ("599", "Input should be greater than or equal to 600"),
        ("43201", "Input should be less than or equal to 43200"),
        ("2h", "Input should be a valid integer"),
    ],
)
def test_a_budget_out_of_range_names_its_line(value, message):
    with pytest.raises(ConfigError) as info:
        parse_project(HEADER + SECTION + f"  head_node_bootstrap_timeout: {value}\n")
    assert info.value.one_line().startswith(
        f"clustertools.yaml:11: parallelcluster.head_node_bootstrap_timeout: {message}"
    )


@pytest.mark.parametrize("template", available_templates(cluster_config_dir()))
def test_the_rendered_budget_passes_parallelclusters_schema(template):
    project = parse_project(HEADER + IMAGE + ENV + SECTION + f"  template: {template}\n")
    rendered, problems = validate_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert problems == [] and "HeadNodeBootstrapTimeout: 7500" in rendered.yaml_text


def test_the_computed_budget_never_falls_below_the_installed_parallelclusters_default():
    from pcluster.constants import NODE_BOOTSTRAP_TIMEOUT

    assert PCLUSTER_HEAD_NODE_BOOTSTRAP_S >= NODE_BOOTSTRAP_TIMEOUT
