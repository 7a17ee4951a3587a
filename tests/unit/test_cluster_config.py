"""ParallelCluster configs: every template x example renders (golden files) and passes ParallelCluster's
own schema offline; hostile values give one clear line each; no render opens SSH to the world, allows
IMDSv1, leaves a volume unencrypted, deletes shared storage on `down`, or carries a secret."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cluster_tools.errors import ConfigError
from cluster_tools.model.aws.cluster_checks import ALLOWED_IPS_PLACEHOLDER, find_problems
from cluster_tools.model.aws.cluster_spec import ClusterSpec, cluster_name_for
from cluster_tools.model.project.project_config import Project, parse_project
from cluster_tools.render.pcluster_config import (
    available_templates,
    bootstrap_url,
    render_cluster_config,
    yaml_value,
)
from cluster_tools.store.shipped_files import cluster_config_dir
from cluster_tools.transport.pcluster_schema import flatten_errors, known_instance_types, validate_cluster_config
from tests.helpers import assert_golden

TEMPLATES_DIR = cluster_config_dir()  # the checkout's cluster-config/
HEADER = "name: study\nstorage:\n  output: s3://study-outputs/results\n"
EXAMPLES = sorted(p.stem for p in (TEMPLATES_DIR / "examples").glob("*.yaml"))
TEMPLATES = available_templates(TEMPLATES_DIR)
MINIMAL = (
    HEADER
    + """\
parallelcluster:
  region: us-east-1
  subnet_id: subnet-0123456789abcdef0
  queues:
    - name: spot
      instance_types: [c5.4xlarge]
      max_count: 10
"""
)


def example_project(example: str) -> Project:
    return parse_project(HEADER + (TEMPLATES_DIR / "examples" / f"{example}.yaml").read_text())


def render(project: Project, spec: ClusterSpec | None = None, caller_cidr: str | None = "203.0.113.7/32") -> str:
    spec = spec or project.parallelcluster
    name = cluster_name_for(spec, project.name)
    return render_cluster_config(
        spec,
        cluster_name=name,
        bootstrap_url=bootstrap_url("study-outputs", name),
        caller_cidr=caller_cidr,
        output_bucket="study-outputs",
        project=project.name,
        owner="alice",
        templates_dir=TEMPLATES_DIR,
    )


def problems_of(text: str, name: str = "study", **kwargs) -> list[str]:
    return validate_cluster_config(text, name, "us-east-1", **kwargs)


def test_there_are_templates_and_examples_for_the_seed_workloads():
    assert {"spot-cpu", "ondemand-gpu"} <= set(TEMPLATES)
    assert {"abcd-segmentation", "hcp-rapidtide"} <= set(EXAMPLES)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_template_and_example_renders_and_passes_parallelclusters_schema(template, example):
    project = example_project(example)
    spec = project.parallelcluster.model_copy(update={"template": template})
    text = render(project, spec)
    assert_golden(f"cluster_{template}_{example}.yaml", text)
    assert problems_of(text, cluster_name_for(spec, project.name)) == []


@pytest.mark.parametrize(
    "extra",
    [
        "  shared_storage: {type: ebs, existing_id: vol-0123456789abcdef0}\n",
        "  shared_storage: {type: efs, existing_id: fs-0123456789abcdef0}\n",
        "  shared_storage: {type: fsx-lustre, size_gb: 2400, mount_dir: /fsx}\n",
        "  database: {uri: acct.example.us-east-1.rds.amazonaws.com:3306, user_name: slurm,"
        " password_secret_arn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:slurmdb-AbCdEf',"
        " database_name: study_acct}\n",
        "  key_name: my-key\n  allowed_ips: pl-0123456789abcdef0\n  os: rocky9\n  custom_ami: ami-0123456789abcdef0\n",
        "  compute_subnet_ids: [subnet-0123456789abcdef1, subnet-0123456789abcdef2]\n",
    ],
)
def test_optional_sections_render_and_pass(extra):
    text = render(parse_project(MINIMAL + extra))
    assert problems_of(text) == []


def test_the_defaults_that_hurt_users_are_set_on_purpose():
    config = yaml.safe_load(render(parse_project(MINIMAL + "  shared_storage: {type: efs}\n")))
    assert config["HeadNode"]["Ssh"]["AllowedIps"] == "203.0.113.7/32"
    assert config["Imds"] == {"ImdsSupport": "v2.0"} and config["HeadNode"]["Imds"] == {"Secured": True}
    assert config["HeadNode"]["LocalStorage"]["RootVolume"]["Encrypted"] is True
    queue = config["Scheduling"]["SlurmQueues"][0]
    assert queue["CapacityType"] == "SPOT" and queue["ComputeResources"][0]["MinCount"] == 0
    assert queue["ComputeSettings"]["LocalStorage"]["RootVolume"] == {
        "Size": 100,
        "VolumeType": "gp3",
        "Encrypted": True,
    }
    assert config["SharedStorage"][0]["EfsSettings"] == {"Encrypted": True, "DeletionPolicy": "Retain"}
    settings = config["Scheduling"]["SlurmSettings"]
    assert settings["CustomSlurmSettings"] == [{"MaxArraySize": 10001}, {"MaxJobCount": 200000}, {"MinJobAge": 600}]
    assert settings["ScaledownIdletime"] == 10
    bootstrap = "s3://study-outputs/clustertools/study/bootstrap/on-node-configured.sh"
    for node in (config["HeadNode"], queue):
        assert node["CustomActions"]["OnNodeConfigured"]["Script"] == bootstrap
        assert node["Iam"]["S3Access"][-1] == {"BucketName": "study-outputs", "EnableWriteAccess": True}
    assert {t["Key"]: t["Value"] for t in config["Tags"]} == {
        "project": "study",
        "owner": "alice",
        "clustertools": "0.1.0",
    }


def test_input_buckets_are_read_only_and_the_output_bucket_writable():
    project = parse_project(
        MINIMAL.replace(
            "  output: s3://study-outputs/results\n", "  output: s3://study-outputs/results\n  input: s3://raw-t1/x\n"
        )
        + "  input_buckets: [abcd-t1, study-outputs, abcd-t1]\n"
    )
    name = "study"
    text = render_cluster_config(
        project.parallelcluster,
        cluster_name=name,
        bootstrap_url=bootstrap_url("study-outputs", name),
        caller_cidr=None,
        output_bucket="study-outputs",
        project="study",
        extra_input_buckets=[project.storage.input.bucket],
        templates_dir=TEMPLATES_DIR,
    )
    access = yaml.safe_load(text)["HeadNode"]["Iam"]["S3Access"]
    assert access == [
        {"BucketName": "abcd-t1", "EnableWriteAccess": False},
        {"BucketName": "raw-t1", "EnableWriteAccess": False},
        {"BucketName": "study-outputs", "EnableWriteAccess": True},
    ]


def test_without_an_address_the_placeholder_fails_with_one_line_and_never_opens_ssh():
    text = render(parse_project(MINIMAL), caller_cidr=None)
    assert yaml.safe_load(text)["HeadNode"]["Ssh"]["AllowedIps"] == ALLOWED_IPS_PLACEHOLDER
    assert "0.0.0.0/0" not in text.replace("# ParallelCluster's default is 0.0.0.0/0", "")
    problems = problems_of(text)
    assert len(problems) == 1 and problems[0].startswith("HeadNode.Ssh.AllowedIps: your public address is unknown")


def test_the_world_is_allowed_only_when_the_project_says_so():
    text = render(parse_project(MINIMAL + "  allowed_ips: 0.0.0.0/0\n"))
    assert problems_of(text, open_ssh_ok=True) == []
    assert [p.split(":")[0] for p in problems_of(text)] == ["HeadNode.Ssh.AllowedIps"]


@pytest.mark.parametrize(
    "line, value, expected",
    [
        (
            "      max_count: 10",
            "      max_count: ten",
            "clustertools.yaml:10: parallelcluster.queues[0].max_count: Input should be a valid integer",
        ),
        (
            "    - name: spot",
            "    - name: 'spot!'",
            "clustertools.yaml:8: parallelcluster.queues[0].name: queue names take lowercase",
        ),
        ("    - name: spot", "    - name: Spot", "clustertools.yaml:8: parallelcluster.queues[0].name:"),
        ("    - name: spot", "    - name: default", "clustertools.yaml:8: parallelcluster.queues[0].name:"),
        ("    - name: spot", "    - name: " + "q" * 26, "clustertools.yaml:8: parallelcluster.queues[0].name:"),
        (
            "      instance_types: [c5.4xlarge]",
            "      instance_types: ['c5.4xlarge; rm -rf /']",
            "clustertools.yaml:9: parallelcluster.queues[0].instance_types:",
        ),
        ("  region: us-east-1", "  region: 'us-east-1\\nHeadNode: {}'", "clustertools.yaml:5: parallelcluster.region:"),
        (
            "  subnet_id: subnet-0123456789abcdef0",
            "  subnet_id: subnet-xyz",
            "clustertools.yaml:6: parallelcluster.subnet_id:",
        ),
        (
            "      max_count: 10",
            "      max_count: 10\n      min_count: 11",
            "clustertools.yaml:8: parallelcluster.queues[0]: min_count 11 is above",
        ),
        (
            "      max_count: 10",
            "      max_count: 10\n      allocation_strategy: 'lowest price'",
            "clustertools.yaml:11: parallelcluster.queues[0].allocation_strategy: an allocation strategy like",
        ),
    ],
)
def test_hostile_values_in_the_project_give_one_line_with_the_yaml_line(line, value, expected):
    with pytest.raises(ConfigError) as info:
        parse_project(MINIMAL.replace(line, value))
    message = info.value.one_line()
    assert expected in message and "\n" not in message and message.count("parallelcluster.") == 1


@pytest.mark.parametrize(
    "extra, key",
    [
        ("  allowed_ips: 0.0.0.0/99\n", "allowed_ips"),
        ("  allowed_ips: '2001:db8::/64'\n", "allowed_ips"),
        ("  input_buckets: ['s3://abcd-t1']\n", "input_buckets"),
        ("  tags: {project: other}\n", "tags"),
        ("  tags: {'aws:x': y}\n", "tags"),
        ('  tags: {note: "a\\nb: c"}\n', "tags"),
        ("  shared_storage: {type: efs, size_gb: 10}\n", "shared_storage"),
        ("  shared_storage: {type: ebs, mount_dir: /home}\n", "shared_storage.mount_dir"),
        ("  database: {uri: h, user_name: u, password_secret_arn: hunter2}\n", "database.password_secret_arn"),
        ("  slurm: {max_array_size: 300000, max_job_count: 200000}\n", "slurm"),
        ("  name: '1cluster'\n", "name"),
        ("  template: ../../etc/passwd\n", "template"),
        ("  queues_extra: 1\n", "queues_extra: unknown key"),
    ],
)
def test_other_hostile_values_are_refused_by_the_project_model(extra, key):
    with pytest.raises(ConfigError) as info:
        parse_project(MINIMAL + extra)
    assert f"parallelcluster.{key}" in info.value.one_line()


def edited(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def test_parallelclusters_schema_errors_become_one_line_per_problem():
    text = edited(render(parse_project(MINIMAL)), "MaxCount: 10", "MaxCount: ten")
    assert problems_of(text) == ["Scheduling.SlurmQueues[0].ComputeResources[0].MaxCount: Not a valid integer."]


def test_an_unknown_instance_type_is_caught_by_our_check_not_the_schema():
    # The schema takes any string as an instance type; EC2's list (bundled with botocore) knows m5.huge is made up.
    text = render(parse_project(MINIMAL.replace("c5.4xlarge", "m5.huge")))
    assert problems_of(text, check_instance_types=False) == []
    assert problems_of(text) == [
        "Scheduling.SlurmQueues[0].ComputeResources[0].Instances[0].InstanceType: 'm5.huge' "
        "is not an EC2 instance type (checked against the list bundled with botocore; "
        "`up` asks EC2 in the cluster's region)"
    ]
    assert {"c5.4xlarge", "g5.xlarge", "t3.medium"} <= known_instance_types()


def test_a_bad_queue_name_in_a_raw_config_is_caught_by_our_check():
    text = edited(render(parse_project(MINIMAL)), "  - Name: spot\n", '  - Name: "spot!"\n')
    [problem] = problems_of(text)
    assert problem.startswith("Scheduling.SlurmQueues[0].Name: 'spot!' is not a valid queue name")


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("ImdsSupport: v2.0", "ImdsSupport: v1.0", "Imds.ImdsSupport"),
        ("  Imds:\n    Secured: true", "  Imds:\n    Secured: false", "HeadNode.Imds.Secured"),
        (
            "      Size: 50\n      VolumeType: gp3\n      Encrypted: true",
            "      Size: 50\n      Encrypted: false",
            "HeadNode.LocalStorage.RootVolume.Encrypted",
        ),
        (
            "            Encrypted: true",
            "            Encrypted: false",
            "Scheduling.SlurmQueues[0].ComputeSettings.LocalStorage.RootVolume.Encrypted",
        ),
        ("DeletionPolicy: Retain", "DeletionPolicy: Delete", "SharedStorage[0].EfsSettings.DeletionPolicy"),
        ("      DeletionPolicy: Retain\n", "", "SharedStorage[0].EfsSettings.DeletionPolicy"),
        ("AllowedIps: 203.0.113.7/32", "AllowedIps: 0.0.0.0/0", "HeadNode.Ssh.AllowedIps"),
        ("    Value: alice", "    Value: AKIAIOSFODNN7EXAMPLE", "Tags[1].Value"),
        ("    Value: alice", "    Value: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "Tags[1].Value"),
        (
            "        - abcd-seg",
            "        - abcd-seg\n        - '-----BEGIN RSA PRIVATE KEY-----'",
            "HeadNode.CustomActions.OnNodeConfigured.Args[4]",
        ),
    ],
)
def test_our_checks_each_give_one_line(old, new, where):
    project = parse_project(MINIMAL + "  name: abcd-seg\n  shared_storage: {type: efs}\n")
    text = edited(render(project), old, new)
    problems = problems_of(text, "abcd-seg")
    assert len(problems) == 1 and problems[0].startswith(f"{where}: "), problems
    assert "AKIA" not in problems[0] and "EXAMPLEKEY" not in problems[0]  # never echo a secret


def test_a_password_written_into_the_config_is_a_finding():
    config = {"Scheduling": {"SlurmSettings": {"Database": {"Password": "hunter2", "PasswordSecretArn": "arn:aws:x"}}}}
    assert [p for p in find_problems(config, "c") if "Password" in p] == [
        "Scheduling.SlurmSettings.Database.Password: looks like a secret (its key names one, and it is not an ARN); "
        "keep secrets in Secrets Manager and reference their ARN"
    ]


def test_slurm_accounting_limits_the_cluster_name_to_40_characters():
    config = {"Scheduling": {"SlurmSettings": {"Database": {"Uri": "h:3306"}}}}
    assert any(
        p.startswith("Scheduling.SlurmSettings.Database: with Slurm accounting the cluster name may have at most 40")
        for p in find_problems(config, "c" * 41)
    )
    assert not any("Database" in p for p in find_problems(config, "c" * 40))


def test_marshmallow_errors_flatten_to_paths():
    messages = {
        "Scheduling": {
            "SlurmQueues": {
                0: {"ComputeResources": {0: {"MaxCount": ["Not a valid integer."]}}},
                1: {"_schema": ["A queue\nproblem."]},
            }
        },
        "Foo": ["Unknown field."],
    }
    assert flatten_errors(messages) == [
        "Scheduling.SlurmQueues[0].ComputeResources[0].MaxCount: Not a valid integer.",
        "Scheduling.SlurmQueues[1]: A queue problem.",
        "Foo: Unknown field.",
    ]
    assert flatten_errors(["top"]) == ["(top level): top"]


@pytest.mark.parametrize("text", ["", "- a\n", "HeadNode: [\n"])
def test_a_broken_config_text_is_one_line(text):
    problems = problems_of(text)
    assert len(problems) == 1 and "\n" not in problems[0]


def test_validation_leaves_the_environment_as_it_was(monkeypatch):
    # a missing profile would break boto3's region lookup: offline validation must not read it
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_CONFIG_FILE", raising=False)
    before = dict(os.environ)
    assert problems_of(render(parse_project(MINIMAL))) == []
    assert dict(os.environ) == before


def test_yaml_look_alikes_stay_strings():
    project = parse_project(
        HEADER.replace("name: study", "name: '1e3'")
        + MINIMAL[len(HEADER) :]
        + "  input_buckets: ['null', 'yes', '123', 'on.off']\n  owner: 'true'\n"
        + "  tags: {note: 'a: b', list: '- x', num: '0x10', time: '1:30'}\n"
    )
    config = yaml.safe_load(render(project))
    buckets = [a["BucketName"] for a in config["HeadNode"]["Iam"]["S3Access"]]
    assert buckets == ["null", "yes", "123", "on.off", "study-outputs"]
    tags = {t["Key"]: t["Value"] for t in config["Tags"]}
    assert tags["project"] == "1e3" and tags["owner"] == "true"
    assert tags["note"] == "a: b" and tags["list"] == "- x" and tags["num"] == "0x10" and tags["time"] == "1:30"
    assert problems_of(yaml.safe_dump(config), "ct-1e3") == []


@given(st.text(max_size=60))
def test_any_text_through_yaml_value_reads_back_as_itself(value):
    assert yaml.safe_load(f"key: {yaml_value(value)}\nafter: 1\n") == {"key": value, "after": 1}


@pytest.mark.parametrize(
    "value, expected", [(True, "true"), (0, "0"), (10001, "10001"), ("v2.0", "v2.0"), ("\x7f", '"\\x7f"')]
)
def test_yaml_value_keeps_types(value, expected):
    assert yaml_value(value) == expected and yaml.safe_load(expected) == value


def test_yaml_value_refuses_what_a_template_should_not_print():
    with pytest.raises(TypeError):
        yaml_value(None)


def test_an_unknown_template_names_the_choices():
    spec = parse_project(MINIMAL + "  template: nope\n").parallelcluster
    with pytest.raises(ConfigError) as info:
        render(parse_project(MINIMAL), spec)
    assert (
        "no template 'nope'" in info.value.one_line()
        and "choose one of: ondemand-gpu, spot-cpu" in info.value.one_line()
    )


def test_cluster_names_come_from_the_project_when_not_given():
    spec = parse_project(MINIMAL).parallelcluster
    assert cluster_name_for(spec, "my_study.v2") == "my-study-v2"
    assert cluster_name_for(spec, "2024-abcd") == "ct-2024-abcd"
    assert cluster_name_for(spec.model_copy(update={"name": "given"}), "x") == "given"


BOOTSTRAP_SHA = "0f" * 32
WITH_BOOTSTRAP = (
    HEADER
    + f"""\
job:
  container: docker://ghcr.io/acme/seg@sha256:{"e" * 64}
bootstrap:
  miniforge_url: s3://mirror-bucket/installers/Miniforge3-24.11.3-0-Linux-x86_64.sh
  miniforge_sha256: {BOOTSTRAP_SHA}
  env_file: envs/study.yml
"""
    + MINIMAL[len(HEADER) :]
    + "  shared_storage: {type: efs}\n"
)


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_projects_bootstrap_settings_reach_every_nodes_args(template, monkeypatch):
    from cluster_tools.services.aws import cluster_config as service

    monkeypatch.setattr(service, "_local_user", lambda: "alice")  # the owner tag: the same on every machine
    project = parse_project(WITH_BOOTSTRAP + f"  template: {template}\n")
    rendered = service.render_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert_golden(f"cluster_{template}_with-bootstrap.yaml", rendered.yaml_text)
    assert problems_of(rendered.yaml_text) == []
    config = yaml.safe_load(rendered.yaml_text)
    expected = [
        "--project",
        "study",
        "--cluster",
        "study",
        "--runtime",
        "enroot",  # alinux2023's AMI ships it
        "--bootstrap-prefix",
        "s3://study-outputs/clustertools/study/bootstrap/",
        "--miniforge-url",
        "s3://mirror-bucket/installers/Miniforge3-24.11.3-0-Linux-x86_64.sh",
        "--miniforge-sha256",
        BOOTSTRAP_SHA,
        "--env-file",
        "env/study.yml",
        "--image",
        "docker://ghcr.io/acme/seg@sha256:" + "e" * 64,
        "--shared-dir",
        "/shared",
    ]  # the shared storage's mount: images and environments land there
    nodes = [config["HeadNode"], *config["Scheduling"]["SlurmQueues"]]
    assert all(node["CustomActions"]["OnNodeConfigured"]["Args"] == expected for node in nodes)
    # The installer's bucket is readable from every node, never writable.
    for node in nodes:
        assert {"BucketName": "mirror-bucket", "EnableWriteAccess": False} in node["Iam"]["S3Access"]


def test_without_a_bootstrap_section_the_args_stay_as_they_were():
    from cluster_tools.services.aws.cluster_config import render_project_cluster

    config = yaml.safe_load(render_project_cluster(parse_project(MINIMAL), allowed_ip="203.0.113.7/32").yaml_text)
    assert config["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Args"] == [
        "--project",
        "study",
        "--cluster",
        "study",
        "--runtime",
        "none",
        "--bootstrap-prefix",
        "s3://study-outputs/clustertools/study/bootstrap/",
    ]


def test_an_image_file_on_the_nodes_is_not_pulled():
    from cluster_tools.services.aws.cluster_config import render_project_cluster

    project = parse_project(MINIMAL.replace(HEADER, HEADER + "job:\n  container: /shared/images/seg.sif\n"))
    args = yaml.safe_load(render_project_cluster(project, allowed_ip="203.0.113.7/32").yaml_text)["HeadNode"][
        "CustomActions"
    ]["OnNodeConfigured"]["Args"]
    assert args[args.index("--runtime") + 1] == "enroot" and "--image" not in args


APPTAINER_PIN = f'  container_runtime: apptainer\n  apptainer_version: "1.4.5"\n  apptainer_sha256: {"ab" * 32}\n'


@pytest.mark.parametrize(
    "os_name, bootstrap, runtime",
    [
        ("alinux2023", "", "enroot"),
        ("ubuntu2204", "", "enroot"),
        ("ubuntu2404", "", "enroot"),
        ("rhel8", "", "enroot"),
        ("rhel9", "", "enroot"),
        ("rocky8", "", "docker"),
        ("rocky9", "", "docker"),
        ("alinux2023", "  container_runtime: docker\n", "docker"),
        ("ubuntu2404", APPTAINER_PIN, "apptainer"),
        ("rocky9", APPTAINER_PIN, "apptainer"),
    ],
)
def test_every_node_is_told_the_runtime_of_its_os(os_name, bootstrap, runtime, monkeypatch):
    """The runtime is said explicitly in the Args, chosen per OS; apptainer comes with its pinned package."""
    from cluster_tools.services.aws import cluster_config as service

    monkeypatch.setattr(service, "_local_user", lambda: "alice")
    text = WITH_BOOTSTRAP.replace("bootstrap:\n", "bootstrap:\n" + bootstrap) + f"  os: {os_name}\n"
    rendered = service.render_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32")
    assert problems_of(rendered.yaml_text) == []
    config = yaml.safe_load(rendered.yaml_text)
    pins = ["--apptainer-version", "1.4.5", "--apptainer-sha256", "ab" * 32]
    for node in [config["HeadNode"], *config["Scheduling"]["SlurmQueues"]]:
        args = node["CustomActions"]["OnNodeConfigured"]["Args"]
        assert args[args.index("--runtime") + 1] == runtime
        assert (args[-6:-2] == pins) == (runtime == "apptainer")  # before --shared-dir DIR
    if (os_name, runtime) in (("ubuntu2404", "apptainer"), ("rocky9", "docker")):
        assert_golden(f"cluster_spot-cpu_runtime-{os_name}-{runtime}.yaml", rendered.yaml_text)


def test_apptainer_on_graviton_is_a_validate_problem():
    from cluster_tools.services.aws.cluster_config import validate_project_cluster

    text = WITH_BOOTSTRAP.replace("bootstrap:\n", "bootstrap:\n" + APPTAINER_PIN) + "  os: ubuntu2404\n"
    project = parse_project(text.replace("[c5.4xlarge]", "[c7g.4xlarge, c6gn.4xlarge]"))
    _, problems = validate_project_cluster(project, allowed_ip="203.0.113.7/32")
    assert problems == [
        "apptainer has release packages for x86_64 only, and c7g.4xlarge, c6gn.4xlarge are Graviton "
        "(arm64): use enroot or docker, or x86_64 instance types"
    ]
    _, problems = validate_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32")
    assert problems == []


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        (
            "docker://123456789012.dkr.ecr.eu-west-2.amazonaws.com/lab/kwyk:1.0",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        ),
        ("docker://ghcr.io/acme/seg:1.0", None),
    ],
)
def test_an_image_in_ecr_gives_every_node_ecrs_read_policy(image, policy, monkeypatch):
    """The nodes log in to ECR with their role (bootstrap/on-node-configured.sh, ecr_*): the role may read ECR."""
    from cluster_tools.services.aws import cluster_config as service

    monkeypatch.setattr(service, "_local_user", lambda: "alice")
    text = WITH_BOOTSTRAP.replace("docker://ghcr.io/acme/seg@sha256:" + "e" * 64, image) + "  template: spot-cpu\n"
    rendered = service.render_project_cluster(parse_project(text), allowed_ip="203.0.113.7/32")
    assert problems_of(rendered.yaml_text) == []
    config = yaml.safe_load(rendered.yaml_text)
    for node in (config["HeadNode"], *config["Scheduling"]["SlurmQueues"]):
        policies = [p["Policy"] for p in node["Iam"].get("AdditionalIamPolicies", [])]
        assert (policy in policies) if policy else not any("ContainerRegistry" in p for p in policies), policies
