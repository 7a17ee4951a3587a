"""Issue 11, done when: hostile strings in every CLI option and project field that takes a name, a path or a
shell-reaching value give one `Error:` line and a non-zero exit, write no file, and queue nothing.

In-process (click's CliRunner) for speed; "nothing queued" is proven by recording every attempt to open
an SSH connection or an S3 client: there must be none. tests/integration/test_hostile_submit.py runs
the red-team's own example against the real sandbox.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cluster_tools.cli import cli
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.store.cluster_store import save_cluster
from cluster_tools.store.run_store import save_run
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run

PIECES = [
    "\n",
    "\r",
    "\x00",
    "\t",
    " ",
    "$(touch PWNED)",
    "`touch PWNED`",
    "'",
    '"',
    ";",
    "../",
    "/",
    "\\",
    "ü",
    "\u2028",
    "\u00a0",
    "*",
    "|",
    "#",
]
_SAFE = st.text(alphabet="abcXYZ019._-", max_size=6)
# Each value holds at least one hostile piece, so no value is a valid name by chance.
HOSTILE = st.one_of(
    st.builds(lambda a, piece, b: a + piece + b, _SAFE, st.sampled_from(PIECES), st.text(max_size=6)),
    st.builds(lambda rest: "-" + rest, _SAFE),  # looks like an option
    st.sampled_from(["..", ".", "../../../../tmp/x", "/etc/passwd", "x\ntouch /tmp/PWNED\n#"]),
).filter(lambda value: value != "--")  # not a value: every command line reads it as "no more options"
# (`cancel RUN --` rightly cancels the whole run).
# In an image path or a key prefix '/' is a separator and '-' no option: there, '..' must be a whole part.
_PATH_PIECES = [p for p in PIECES if p not in ("/", "../")] + ["/../"]
HOSTILE_IN_PATH = st.one_of(
    st.builds(lambda a, piece, b: a + piece + b, _SAFE, st.sampled_from(_PATH_PIECES), st.text(max_size=6)),
    st.sampled_from(["..", "../../../../tmp/x", "x\ntouch /tmp/PWNED\n#"]),
)
# A subject list splits on newlines: there a newline makes two lines, not a hostile subject.
HOSTILE_SUBJECT = HOSTILE.filter(lambda s: "\n" not in s and s.strip(" \t\r\f\v") == s and not s.startswith("#"))

BASE_PROJECT = {
    "name": "study",
    "cluster": "lab",
    "storage": {"output": "s3://out-bucket/results"},
    "job": {"command": "true", "mem": "1G", "time": "00:10:00"},
}
RUN = "demo-1"

# (argv with X for the hostile value); {subjects}, {file} are the fixture's files, {newdir} a new directory.
TARGETS = [
    ["submit", "{subjects}", "--name", "X"],
    ["submit", "{subjects}", "--mem", "X"],
    ["submit", "{subjects}", "--time", "X"],
    ["submit", "{subjects}", "--partition", "X"],
    ["submit", "{subjects}", "-c", "X"],
    ["submit", "{subjects}", "--dry-run", "--name", "X"],
    ["status", "X"],
    ["logs", "X", "sub-01"],
    ["logs", RUN, "X"],
    ["cancel", "X"],
    ["cancel", RUN, "X"],
    ["resubmit", "X", "--failed"],
    ["results", "ls", "X"],
    ["results", "get", "X"],
    ["results", "get", RUN, "X"],
    ["results", "check", "X"],
    ["results", "du", "X"],
    ["results", "collect", "X", "--file", "m.json"],
    ["report", "X"],
    ["cost", "run", "X"],
    ["debug", "--run", "X", "sub-01", "--dry-run"],
    ["debug", "--run", RUN, "X", "--dry-run"],
    ["debug", "--mem", "X", "--dry-run"],
    ["debug", "--time", "X", "--dry-run"],
    ["debug", "--partition", "X", "--dry-run"],
    ["init", "{newdir}", "--name", "X"],
    ["init", "{newdir}", "--cluster", "X"],
    ["forget", "X"],
    ["register", "X", "u@127.0.0.1", "--no-check"],
    ["ssh", "-c", "X", "--", "true"],
    ["ssh", "--node", "X", "--", "true"],
    ["down", "-c", "X"],
    ["describe", "-c", "X"],
    ["ssh-config", "-c", "X"],
    ["debug", "-c", "X"],
    ["triage", "-c", "X"],
    ["autostop", "10", "-c", "X"],
    ["put", "{file}", "-c", "X"],
    ["get", "x", "-c", "X"],
    ["cost", "cluster", "-c", "X"],
]
PROJECT_FIELDS = [("name",), ("cluster",), ("job", "mem"), ("job", "time"), ("job", "partition")]
PATH_FIELDS = [("storage", "output"), ("job", "container")]


@contextmanager
def world():
    """A state dir with one cluster and one run, a project, a subject list; outside it, a planted cluster
    record and run record that a path escape would read."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = StateDir(root / "home" / "state")
        save_cluster(
            state,
            ClusterRecord(
                name="lab", host="127.0.0.1", port=1, user="u", known_hosts=state.clusters / "lab.known_hosts"
            ),
        )
        save_run(state, make_run().model_copy(update={"cluster": "lab"}))
        planted = ClusterRecord(name="planted", host="127.0.0.1", port=1, user="u", known_hosts=root / "k")
        (root / "x.json").write_text(json.dumps(planted.model_dump(mode="json")))
        project = root / "home" / "project"
        project.mkdir()
        (project / "subjects.txt").write_text("sub-01\nsub-02\n")
        (project / "clustertools.yaml").write_text(yaml.safe_dump(BASE_PROJECT))
        yield root, state, project


def _files(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and directory (None) under ``root``."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in root.rglob("*")
    }


def invoke(root: Path, state: StateDir, project: Path, argv: list[str]):
    """Run the CLI in-process; returns (result, connections attempted)."""
    opened: list[str] = []

    def refuse(*args, **kwargs):
        opened.append(repr(args[:2]))
        raise OSError("tests: no connection may be opened for a refused value")

    with (
        mock.patch("cluster_tools.transport.ssh.SSHConnection.__init__", refuse),
        mock.patch("cluster_tools.transport.s3.make_s3_client", refuse),
        mock.patch.dict(os.environ, {"CLUSTERTOOLS_STATE_DIR": str(state.root)}),
    ):
        cwd = os.getcwd()
        os.chdir(project)
        try:
            result = CliRunner().invoke(cli, ["--project", str(project / "clustertools.yaml"), *argv])
        finally:
            os.chdir(cwd)
    return result, opened


def assert_refused(root: Path, state: StateDir, project: Path, argv: list[str]) -> None:
    before = _files(root)
    result, opened = invoke(root, state, project, argv)
    shown = f"{argv!r}: exit {result.exit_code}, stderr {result.stderr!r}"
    assert result.exit_code not in (0, None), shown
    lines = result.stderr.strip("\n").split("\n")
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, shown
    if len(lines) > 1:  # only click's own usage error (a value like -x read as an option): usage, then the line
        assert result.exit_code == 2 and lines[0].startswith("Usage: ") and lines[-1] == errors[0], shown
    assert "Traceback" not in result.stderr and "unexpected" not in errors[0], shown
    assert opened == [], f"{shown}: a connection was attempted"
    assert _files(root) == before, f"{shown}: files changed"


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: " ".join(t))
@given(value=HOSTILE)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(value="x\ntouch /tmp/PWNED\n#")
@example(value="../../../x")  # the planted record outside the state dir
def test_a_hostile_value_in_any_option_is_refused(target, value):
    with world() as (root, state, project):
        (project / "in.txt").write_text("data")
        argv = [
            a.format(
                subjects=str(project / "subjects.txt"), file=str(project / "in.txt"), newdir=str(root / "new-project")
            )
            for a in target
        ]
        argv = [value if a == "X" else a for a in argv]
        assert_refused(root, state, project, argv)


def _project_with(field: tuple[str, ...], value: str) -> str:
    data = json.loads(json.dumps(BASE_PROJECT))
    parent = data
    for part in field[:-1]:
        parent = parent[part]
    parent[field[-1]] = value if field != ("storage", "output") else f"s3://out-bucket/{value}"
    return yaml.safe_dump(data)


@pytest.mark.parametrize("field", PROJECT_FIELDS, ids=".".join)
@given(value=HOSTILE)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(value="x\ntouch /tmp/PWNED\n#")
def test_a_hostile_value_in_any_project_field_is_refused(field, value):
    with world() as (root, state, project):
        (project / "clustertools.yaml").write_text(_project_with(field, value))
        assert_refused(root, state, project, ["submit", str(project / "subjects.txt")])


@pytest.mark.parametrize("field", PATH_FIELDS, ids=".".join)
@given(value=HOSTILE_IN_PATH)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_hostile_image_path_or_key_prefix_is_refused(field, value):
    with world() as (root, state, project):
        (project / "clustertools.yaml").write_text(_project_with(field, value))
        assert_refused(root, state, project, ["submit", str(project / "subjects.txt")])


@given(value=HOSTILE_IN_PATH)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_hostile_container_option_is_refused(value):
    with world() as (root, state, project):
        assert_refused(root, state, project, ["submit", str(project / "subjects.txt"), "--container", value])


@given(value=HOSTILE_SUBJECT)
@settings(max_examples=50, deadline=None)
def test_a_hostile_subject_is_refused(value):
    with world() as (root, state, project):
        (project / "subjects.txt").write_text(f"sub-01\n{value}\n")
        assert_refused(root, state, project, ["submit", str(project / "subjects.txt")])
