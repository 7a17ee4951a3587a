"""Hostile or damaged files end in one clear `Error:` line, fast: project files (aliases that expand,
deep nesting, other encodings, numbers YAML reads from h:mm:ss), state records that are not UTF-8,
subject files without an end, and a reader of stdout that goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import load_project, parse_project
from tests.helpers import err, out, run_cli

PROJECT = "name: study\nstorage:\n  output: s3://my-bucket/results\njob:\n  command: echo hi\n"


def laughs(levels: int) -> str:
    """The "billion laughs": each level an alias list of nine of the level below (9**levels strings)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_project(text)
    return info.value.one_line()


def test_aliases_that_expand_are_refused_before_any_walk():
    began = time.monotonic()
    message = error_of(laughs(6))  # 531,441 strings once expanded (9 levels, 1 KB: 88 s of CPU before)
    assert time.monotonic() - began < 1
    assert message.startswith("clustertools.yaml:2: alias *a0 repeats a mapping or list")


def test_merge_keys_are_aliases_too_but_a_scalar_alias_is_fine():
    assert "alias *base repeats" in error_of("base: &base {cpus: 2}\n" + PROJECT + "  <<: *base\n")
    assert (
        parse_project(PROJECT.replace("command: echo hi", "command: &c echo\n  container: *c")).job.container == "echo"
    )


def test_deep_nesting_is_one_error_not_a_recursion_error():
    assert error_of("name: " + "[" * 5000 + "]" * 5000 + "\n") == (
        "clustertools.yaml:1: nested deeper than 50 levels (hint: a project file is a few levels "
        "deep: `clustertools init` writes an example)"
    )
    assert "nested deeper" in error_of("name:\n" + "".join(f"{'  ' * i}- \n" for i in range(60)))


@pytest.mark.parametrize(
    "encoding, expected",
    [
        ("latin-1", ":1: not UTF-8 text (byte 0xe9) (hint: save it as UTF-8"),
        ("utf-16", " is UTF-16 text (hint: save it as UTF-8"),
    ],
)
def test_a_project_file_in_another_encoding_says_which(tmp_path, encoding, expected):
    path = tmp_path / "clustertools.yaml"
    path.write_bytes(("# caf\u00e9\n" + PROJECT).encode(encoding))
    with pytest.raises(ConfigError) as info:
        load_project(path)
    assert (
        info.value.one_line()
        == f"{path}{expected} (e.g. `iconv -f {'LATIN1' if encoding == 'latin-1' else 'UTF-16'} -t UTF-8`))"
    )


def test_a_huge_project_file_is_not_read_whole(tmp_path):
    path = tmp_path / "clustertools.yaml"
    path.write_bytes(PROJECT.encode() + b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than a project file may be"):
        load_project(path)


@pytest.mark.parametrize(
    "field, value, becomes",
    [
        ("time", "1:30:00", "the number 5400 in YAML (h:mm:ss is read in base 60)"),
        ("time", "90:00", "the number 5400 in YAML (h:mm:ss is read in base 60)"),
        ("mem", "yes", "the boolean True in YAML"),
    ],
)
def test_an_unquoted_value_yaml_reads_as_a_number_says_to_quote_it(field, value, becomes):
    message = error_of(PROJECT + f"  {field}: {value}\n")
    assert message.startswith(f'clustertools.yaml:6: job.{field}: {value} unquoted is {becomes}: quote it: "{value}"')
    assert parse_project(PROJECT + f'  time: "{value}"\n' if field == "time" else PROJECT).job


def one_error_line(result) -> str:
    lines = err(result).strip().splitlines()
    assert result.returncode not in (0, None) and "Traceback" not in err(result)
    assert len(lines) == 1 and lines[0].startswith("Error: "), err(result)
    return lines[0]


def test_a_cluster_record_that_is_not_utf8_breaks_neither_list_nor_ssh(state_dir):
    assert run_cli("register", "good", "u@127.0.0.1:1", "--no-check", state=state_dir).returncode == 0
    (state_dir / "clusters" / "bad.json").write_bytes(b'{"name": "caf\xe9"}')
    listed = run_cli("list", state=state_dir)
    assert listed.returncode == 0 and "good" in out(listed)
    assert f"warning: skipping the cluster record {state_dir / 'clusters' / 'bad.json'}: not UTF-8 text" in err(listed)
    unreachable = run_cli("ssh", "--", "true", state=state_dir)  # resolves `good` past the bad record
    assert "cannot reach u@127.0.0.1:1" in one_error_line(unreachable)
    named = one_error_line(run_cli("ssh", "-c", "bad", "--", "true", state=state_dir))
    assert named.endswith("bad.json is not UTF-8 text (byte 0xe9) (hint: remove it with `clustertools forget bad`)")


def test_a_run_record_that_is_not_utf8_is_named_by_runs_and_status(state_dir):
    (state_dir / "runs").mkdir()
    (state_dir / "runs" / "r1.json").write_bytes("\ufeffcaf\u00e9".encode("utf-16"))
    (state_dir / "runs" / "r2.json").write_text("{ torn")
    listed = run_cli("runs", state=state_dir)
    assert listed.returncode == 0 and "no runs yet" in out(listed)
    warnings = err(listed).splitlines()
    assert warnings[0].startswith(
        f"warning: skipping the damaged run record {state_dir / 'runs' / 'r1.json'}: not UTF-8"
    )
    assert warnings[1].startswith(
        f"warning: skipping the damaged run record {state_dir / 'runs' / 'r2.json'}: Invalid JSON"
    )
    assert "r1.json) cannot be read: not UTF-8 text" in one_error_line(run_cli("status", "r1", state=state_dir))


def test_status_without_a_run_names_a_damaged_record_it_skips(state_dir):
    """`status` with no RUN takes the latest run: a damaged record (maybe the latest) is named, not skipped silently."""
    (state_dir / "runs").mkdir()
    (state_dir / "runs" / "r2.json").write_text("{ torn")
    result = run_cli("status", state=state_dir)
    lines = err(result).splitlines()
    assert lines[0].startswith(f"warning: skipping the damaged run record {state_dir / 'runs' / 'r2.json'}")
    assert lines[-1].startswith("Error: no run yet") and result.returncode != 0


def test_a_subject_file_without_an_end_is_refused(tmp_path, state_dir):
    project = tmp_path / "p"
    assert run_cli("init", str(project), "--name", "p", state=state_dir).returncode == 0
    assert run_cli("register", "fake", "u@127.0.0.1:1", "--no-check", state=state_dir).returncode == 0
    began = time.monotonic()
    result = run_cli(
        "submit", "/dev/zero", "--command", "true", "--dry-run", "-c", "fake", state=state_dir, cwd=project
    )
    assert time.monotonic() - began < 20
    assert one_error_line(result) == (
        "Error: /dev/zero is larger than a subject list may be (64 MiB, 1,000,000 lines) "
        "(hint: split it into several runs, or check that it is the right file)"
    )
    many = tmp_path / "many.txt"
    many.write_text("s\n" * 1_000_001)
    assert "larger than a subject list" in one_error_line(
        run_cli("submit", str(many), "--dry-run", "-c", "fake", state=state_dir, cwd=project)
    )


def test_dry_run_into_a_closed_pipe_exits_quietly(tmp_path, state_dir):
    project = tmp_path / "p"
    assert run_cli("init", str(project), "--name", "p", state=state_dir).returncode == 0
    assert run_cli("register", "fake", "u@127.0.0.1:1", "--no-check", state=state_dir).returncode == 0
    (project / "s.txt").write_text("".join(f"s{i}\n" for i in range(2_000)))
    env = {**os.environ, "CLUSTERTOOLS_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster_tools", "submit", "s.txt", "--command", "true", "--dry-run", "-c", "fake"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head -c0`: the reader goes away before the first write (no race)
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (1, 141) and stderr == "", stderr
