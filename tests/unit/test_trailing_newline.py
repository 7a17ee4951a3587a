"""Issue 11 item 4: every validated value refuses a trailing newline (re.match with '$' let 'x\\n' through).

The project file: a sample that sets every string field of the model, each in turn given a trailing
newline. The CLI: every option of `submit` that reaches a script, and -c.
"""

from __future__ import annotations

import copy
import typing
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from cluster_tools.cli import cli
from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.project.project_config import Project, S3Location, parse_project
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.state_dir import StateDir

ACCOUNT = "123456789012"
SAMPLE = {
    "name": "study",
    "cluster": "lab",
    "storage": {
        "output": "s3://out-bucket/results",
        "input": "s3://in-bucket/raw",
        "input_credentials": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:hcp-AbCdEf",
        "input_include": ["anat/*_T1w.nii.gz"],
        "input_exclude": ["*/dwi/*"],
        "shared_inputs": ["s3://in-bucket/models/model.pt"],
    },
    "job": {
        "command": "echo hi",
        "container": "docker://ghcr.io/org/img:1.0",
        "mem": "4G",
        "time": "01:00:00",
        "partition": "compute",
        "container_args": ["--in", "${INPUT_DIR}"],
        "workdir": "code",
    },
    "bootstrap": {
        "miniforge_url": "https://github.com/conda-forge/miniforge/releases/download/24.1/Miniforge3.sh",
        "miniforge_sha256": "0" * 64,
        "env_file": "envs/environment.yml",
        "container_runtime": "apptainer",
        "apptainer_version": "1.4.5",
        "apptainer_sha256": "1" * 64,
    },
    "parallelcluster": {
        "name": "study-cluster",
        "region": "us-east-1",
        "template": "spot-cpu",
        "os": "ubuntu2204",
        "custom_ami": "ami-0123456789abcdef0",
        "head_node_instance_type": "t3.medium",
        "key_name": "my-key",
        "subnet_id": "subnet-0123456789abcdef0",
        "compute_subnet_ids": ["subnet-0123456789abcdef1"],
        "allowed_ips": "203.0.113.7/32",
        "queues": [
            {
                "name": "spot",
                "capacity_type": "SPOT",
                "allocation_strategy": "price-capacity-optimized",
                "instance_types": ["c6i.xlarge"],
            }
        ],
        "input_buckets": ["in-bucket"],
        "additional_iam_policies": [f"arn:aws:iam::{ACCOUNT}:policy/read-secret"],
        "shared_storage": {
            "type": "efs",
            "name": "shared",
            "mount_dir": "/shared",
            "existing_id": "fs-0123456789abcdef0",
        },
        "database": {
            "uri": "acct.example.com:3306",
            "user_name": "admin",
            "database_name": "slurm_acct",
            "password_secret_arn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-AbCdEf",
        },
        "owner": "alice",
        "tags": {"study": "abcd"},
        "autostop_action": "down",
        "autostop_down_policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/ct-down",
        "autostop_down_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ct-down",
    },
}
# Free text by design: the command is a whole shell script (multi-line allowed), always passed through shquote.
FREE_TEXT = {("job", "command")}


def _string_leaves(node, path=()):
    """(path, kind) of every string in the sample: a value, a list item, or a mapping key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if path and path[-1] == "tags":
                yield (*path, key), "key"
            yield from _string_leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _string_leaves(item, (*path, index))
    elif isinstance(node, str):
        yield path, "value"


def _model_of(annotation):
    for arg in (annotation, *typing.get_args(annotation)):
        for inner in (arg, *typing.get_args(arg)):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not S3Location:
                return inner
    return None


def _takes_text(annotation) -> bool:
    text = str(annotation)
    return "str" in text or "S3Location" in text or "Literal" in text


def _string_fields(model: type[BaseModel], path=()) -> set[tuple]:
    found = set()
    for name, field in model.model_fields.items():
        inner = _model_of(field.annotation)
        if inner is not None:
            found |= _string_fields(inner, (*path, name))
        elif _takes_text(field.annotation):
            found.add((*path, name))
    return found


def _with_newline(path, kind):
    data = copy.deepcopy(SAMPLE)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if kind == "key":
        parent[path[-1] + "\n"] = parent.pop(path[-1])
    else:
        parent[path[-1]] += "\n"
    return yaml.safe_dump(data)


LEAVES = [(p, k) for p, k in _string_leaves(SAMPLE) if p not in FREE_TEXT]


def test_the_sample_is_valid_and_sets_every_string_field_of_the_model():
    parse_project(yaml.safe_dump(SAMPLE))
    sampled = {tuple(part for part in path if not isinstance(part, int)) for path, _ in _string_leaves(SAMPLE)}
    sampled |= {path[:-1] for path, kind in _string_leaves(SAMPLE) if kind == "key"}
    assert _string_fields(Project) - sampled == set(), "add the new field to SAMPLE"


@pytest.mark.parametrize("path, kind", LEAVES, ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else v)
def test_every_validated_field_refuses_a_trailing_newline(path, kind):
    with pytest.raises(ConfigError):
        parse_project(_with_newline(path, kind))


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict]:
    state = tmp_path / "state"
    save_cluster(
        StateDir(state),
        ClusterRecord(
            name="lab", host="127.0.0.1", port=1, user="u", known_hosts=state / "clusters" / "lab.known_hosts"
        ),
    )
    (tmp_path / "clustertools.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "study",
                "cluster": "lab",
                "storage": {"output": "s3://out-bucket/results"},
                "job": {"command": "true"},
            }
        )
    )
    (tmp_path / "subjects.txt").write_text("sub-01\n")
    return tmp_path, {"CLUSTERTOOLS_STATE_DIR": str(state)}


@pytest.mark.parametrize(
    "option, value",
    [
        ("--name", "run"),
        ("--mem", "4G"),
        ("--time", "01:00:00"),
        ("--partition", "compute"),
        ("--container", "docker://alpine:3"),
        ("-c", "lab"),
    ],
)
def test_every_submit_option_refuses_a_trailing_newline(project, option, value):
    directory, env = project
    result = CliRunner().invoke(
        cli,
        [
            "--project",
            str(directory / "clustertools.yaml"),
            "submit",
            str(directory / "subjects.txt"),
            "--dry-run",
            option,
            value + "\n",
        ],
        env=env,
    )
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "==>" not in result.stdout  # nothing rendered
