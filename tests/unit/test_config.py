"""The project file: typed model, errors that name the line and key, hostile values."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import S3Location, load_project, parse_project
from cluster_tools.model.project.project_file import find_project_file

GOOD = """\
name: study
cluster: sandbox
storage:
  output: s3://my-bucket/results
job:
  command: echo hi
  cpus: 4
  mem: 8G
  time: "02:00:00"
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_project(text)
    return info.value.one_line()


def test_a_good_file_loads_into_typed_values():
    project = parse_project(GOOD)
    assert project.storage.output == S3Location(bucket="my-bucket", prefix="results")
    assert project.job.cpus == 4 and project.job.mem == "8G" and project.cluster == "sandbox"


def test_a_bad_value_names_the_line_and_key():
    message = error_of(GOOD.replace("cpus: 4", "cpus: four"))
    assert message.startswith("clustertools.yaml:7: job.cpus: Input should be a valid integer")


def test_an_unknown_key_is_refused_with_its_line():
    assert "clustertools.yaml:10: job.cpu: unknown key" in error_of(GOOD + "  cpu: 2\n")


def test_a_missing_key_names_the_parent_line():
    assert error_of("name: x\n").startswith("clustertools.yaml:1: storage: Field required")


def test_every_problem_is_reported_on_one_line():
    message = error_of(GOOD.replace("cpus: 4", "cpus: 0").replace("mem: 8G", "mem: lots"))
    assert "job.cpus" in message and "job.mem" in message and "\n" not in message


def test_a_loaded_project_names_its_keys_by_line_for_later_checks():
    project = parse_project(GOOD, "study/clustertools.yaml")
    assert project.where("job", "mem") == "study/clustertools.yaml:8: job.mem"
    assert project.where("job", "gpus") == "study/clustertools.yaml:5: job.gpus"  # missing: the parent's line
    copied = project.model_copy(update={"cluster": None})
    assert copied.where("storage", "output") == "study/clustertools.yaml:4: storage.output"
    built = type(project).model_validate({"name": "x", "storage": {"output": "s3://bucket/p"}})
    assert built.where("storage") == "clustertools.yaml: storage"  # no YAML: the file without a line


def test_a_duplicate_key_is_refused():
    assert "clustertools.yaml:2: name: key given twice" in error_of("name: a\nname: b\nstorage: {output: s3://b-1}\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "expected a mapping"),
        ("- a\n- b\n", "expected a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: 'a;rm -rf ~'\nstorage: {output: s3://b-1}\n", "name:"),
        ("name: '$(id)'\nstorage: {output: s3://b-1}\n", "name:"),
        ("name: ok\nstorage: {output: 's3://b-1/x'}\ncluster: 'bad name'\n", "cluster:"),
        ("name: ok\nstorage: {output: 'http://b-1/x'}\n", "must be an s3:// URL"),
        ("name: ok\nstorage: {output: 's3://Bad_Bucket'}\n", "not a valid S3 bucket name"),
        ("name: ok\nstorage: {output: s3://b-1}\njob: {time: 'soon'}\n", "job.time"),
        ("name: ok\nstorage: {output: s3://b-1}\njob: {partition: 'a b'}\n", "job.partition"),
    ],
)
def test_hostile_and_broken_files_give_one_clear_line(text: str, expected: str):
    message = error_of(text)
    assert expected in message and "\n" not in message


def test_crlf_and_bom_are_tolerated(tmp_path):
    path = tmp_path / "clustertools.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert load_project(path).name == "study"


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_project(tmp_path / "missing.yaml")


def test_the_project_file_is_found_in_a_parent_dir_never_in_a_child(tmp_path):
    (tmp_path / "clustertools.yaml").write_text(GOOD)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_file(deep) == tmp_path / "clustertools.yaml"
    (deep / "clustertools.yaml").write_text(GOOD)  # nearer by depth, but below the start: a search only looks up
    assert find_project_file(tmp_path / "a") == tmp_path / "clustertools.yaml"
    assert find_project_file(deep) == deep / "clustertools.yaml"  # the nearest one up wins


@given(st.text(max_size=40))
def test_no_text_crashes_the_loader(text: str):
    with contextlib.suppress(ConfigError):  # a clear error is fine; any other exception fails the test
        parse_project(text)


def test_loading_does_not_change_once_pcluster_patched_yaml():
    """pcluster's yaml_load patches SafeLoader process-wide; the project file must load the same after."""
    from pcluster.utils import yaml_load

    yaml_load("a: 1")
    assert "name: key given twice" in error_of("name: a\nname: b\nstorage: {output: s3://b-1}\n")
    assert parse_project(GOOD).name == "study"


SHA = "ab" * 32
BOOTSTRAP = (
    GOOD
    + f"""\
bootstrap:
  miniforge_url: s3://mirror-bucket/installers/Miniforge3-24.11.3-0-Linux-x86_64.sh
  miniforge_sha256: {SHA.upper()}
  env_file: envs/study.yml
"""
)


def test_the_bootstrap_section_loads_typed_and_normalised():
    project = parse_project(BOOTSTRAP)
    settings = project.bootstrap
    assert settings.miniforge_sha256 == SHA  # lower case, as sha256sum prints it
    assert settings.env_file_key == "env/study.yml" and settings.installer_bucket == "mirror-bucket"
    assert parse_project(GOOD).bootstrap.miniforge_url is None  # the section is optional


@pytest.mark.parametrize(
    "container, pulled",
    [
        ("docker://ghcr.io/acme/seg@sha256:" + "c" * 64, "docker://ghcr.io/acme/seg@sha256:" + "c" * 64),
        ("library/alpine:3.19", "library/alpine:3.19"),
        ("/shared/images/seg.sif", None),  # a file already on the nodes: nothing to pull
    ],
)
def test_the_image_comes_from_job_container(container, pulled):
    project = parse_project(GOOD + f"  container: {container}\n")
    assert project.job.container == container and project.job.image_to_pull == pulled


@pytest.mark.parametrize(
    "line, key, message",
    [
        ("  miniforge_url: http://example.com/Miniforge3.sh", "bootstrap.miniforge_url", "https:// or s3://"),
        ("  miniforge_url: 'https://example.com/Miniforge3.sh; rm -rf /'", "bootstrap.miniforge_url", "no spaces"),
        ('  miniforge_url: "https://example.com/a\'b.sh"', "bootstrap.miniforge_url", "no spaces, quotes"),
        ('  miniforge_url: "https://example.com/a\\nb.sh"', "bootstrap.miniforge_url", "no spaces"),
        (
            "  miniforge_url: 'https://example.com/M.sh?X-Amz-Signature=abc'",
            "bootstrap.miniforge_url",
            "no query string",
        ),
        ("  miniforge_sha256: xyz", "bootstrap.miniforge_sha256", "64 hex digits"),
        ("  miniforge_sha256: '" + "g" * 64 + "'", "bootstrap.miniforge_sha256", "64 hex digits"),
        ("  miniforge_sha256: '" + "a" * 63 + "'", "bootstrap.miniforge_sha256", "64 hex digits"),
        ("  env_file: ../secrets.yml", "bootstrap.env_file", "no '..'"),
        ("  env_file: /etc/passwd", "bootstrap.env_file", "inside the project dir"),
        ("  env_file: 'env file.yml'", "bootstrap.env_file", "inside the project dir"),
        ("  env_file: 'env.yml;id'", "bootstrap.env_file", "inside the project dir"),
        ('  env_file: "env.yml\\n--image x"', "bootstrap.env_file", "inside the project dir"),
        ("  envfile: env.yml", "bootstrap.envfile", "unknown key"),
    ],
)
def test_hostile_bootstrap_values_are_refused_with_one_line(line, key, message):
    field = line.split(":")[0]
    text = "\n".join(line if existing.startswith(field + ":") else existing for existing in BOOTSTRAP.splitlines())
    if line not in text:
        text += "\n" + line
    error = error_of(text + "\n")
    assert f": {key}: " in error and message in error and "\n" not in error, error


@pytest.mark.parametrize(
    "section, message",
    [
        ("  miniforge_url: s3://mirror-bucket/Miniforge3.sh\n", "miniforge_url needs miniforge_sha256"),
        (f"  miniforge_sha256: '{SHA}'\n", "miniforge_sha256 is given without miniforge_url"),
        ("  env_file: environment.yml\n", "env_file needs miniforge_url"),
    ],
)
def test_bootstrap_settings_that_only_make_sense_together(section, message):
    error = error_of(GOOD + "bootstrap:\n" + section)
    assert error.startswith("clustertools.yaml:10: bootstrap: ") and message in error


@pytest.mark.parametrize("container", ["docker://x/y:1 --privileged", "a'b", "x;id", "$(id)", "img\nx", ""])
def test_hostile_container_references_are_refused(container):
    assert "job.container" in error_of(GOOD + f"  container: {json.dumps(container)}\n")


CLUSTER = """\
parallelcluster:
  region: us-east-1
  subnet_id: subnet-0123456789abcdef0
  queues: [{name: q, instance_types: [c5.large]}]
"""
WITH_CONTAINER = GOOD + "  container: docker://ghcr.io/acme/seg:1.0\n"
PINNED = f'  apptainer_version: "1.4.5"\n  apptainer_sha256: {"ab" * 32}\n'


@pytest.mark.parametrize(
    "bootstrap, os_line, expected",
    [
        (
            "  container_runtime: apptainer\n" + PINNED,
            "",
            "clustertools.yaml:12: bootstrap.container_runtime: apptainer "
            "cannot run on alinux2023 (no apptainer package, no EPEL, and apptainer's release RPM is built for "
            "EL8/EL9): use enroot or docker",
        ),
        (
            "  container_runtime: apptainer\n" + PINNED,
            "  os: rhel9\n",
            "apptainer cannot run on rhel9 (RHEL has "
            "fakeroot, which apptainer's release RPM needs, only in EPEL): use enroot, docker or podman",
        ),
        (
            "  container_runtime: enroot\n",
            "  os: rocky9\n",
            "clustertools.yaml:12: bootstrap.container_runtime: enroot "
            "cannot run on rocky9 (ParallelCluster has no Rocky AMI that ships enroot): "
            "use docker, apptainer or podman",
        ),
        (
            "",
            "  os: freebsd14\n",
            "clustertools.yaml:15: parallelcluster.os: clustertools does not know which container "
            "runtime freebsd14 can have; a container runs on alinux2023, rhel8, rhel9, rocky8, rocky9, "
            "ubuntu2204, ubuntu2404",
        ),
        (
            "  container_runtime: apptainer\n",
            "  os: ubuntu2404\n",
            "bootstrap: container_runtime apptainer is installed "
            "from its release package, verified before install: set apptainer_version and apptainer_sha256",
        ),
        (
            PINNED,
            "",
            "bootstrap: apptainer_version and apptainer_sha256 go together, with container_runtime: apptainer",
        ),
        (
            '  container_runtime: apptainer\n  apptainer_version: "1.4.5;id"\n',
            "",
            "bootstrap.apptainer_version: a release of github.com/apptainer/apptainer like 1.4.5",
        ),
        (
            "  container_runtime: podman\n",
            "",
            "clustertools.yaml:12: bootstrap.container_runtime: podman cannot run on "
            "alinux2023 (Amazon Linux 2023's repositories have no podman package): use enroot or docker",
        ),
        (
            "  container_runtime: singularity\n",
            "",
            "bootstrap.container_runtime: Input should be 'enroot', 'docker', 'apptainer' or 'podman'",
        ),
    ],
)
def test_a_container_runtime_the_os_cannot_have_is_refused_at_load_naming_what_works(bootstrap, os_line, expected):
    text = WITH_CONTAINER + ("bootstrap:\n" + bootstrap if bootstrap else "") + CLUSTER + os_line
    assert expected in error_of(text)


@pytest.mark.parametrize(
    "bootstrap, cluster",
    [
        ("", CLUSTER),  # alinux2023: enroot
        ("  container_runtime: apptainer\n" + PINNED, CLUSTER + "  os: ubuntu2404\n"),
        ("  container_runtime: docker\n", CLUSTER + "  os: rocky9\n"),
        ("  container_runtime: apptainer\n" + PINNED, ""),  # no cluster of clustertools': nothing to check against
    ],
)
def test_a_runtime_the_os_can_have_loads(bootstrap, cluster):
    parse_project(WITH_CONTAINER + ("bootstrap:\n" + bootstrap if bootstrap else "") + cluster)


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hcp/keys-AbCdEf"


def test_the_input_credentials_go_to_the_task_only_when_asked_and_only_if_there_are_some():
    storage = f"  input: s3://hcp-openaccess/HCP_1200\n  input_credentials: {ARN}\n"
    assert parse_project(GOOD.replace("storage:\n", "storage:\n" + storage)).storage.input_credentials_to_task is False
    asked = parse_project(GOOD.replace("storage:\n", "storage:\n" + storage + "  input_credentials_to_task: true\n"))
    assert asked.storage.input_credentials_to_task is True
    message = error_of(GOOD.replace("storage:\n", "storage:\n  input_credentials_to_task: true\n"))
    assert "input_credentials_to_task gives the task storage.input_credentials: set that too" in message
