"""The red-team's examples of issue 11 (items 1 and 2) against the real sandbox: refused with one Error
line, nothing queued, nothing run, nothing written outside the state dir and the run dirs.

Both failed on 5147a17: the first ran `touch` on the head node (this machine) and in every task,
the second wrote the run record and the head-node run directory under /tmp.
"""

from __future__ import annotations

import glob
import os
import uuid
from pathlib import Path

from tests.helpers import err, out
from tests.integration.run_helpers import make_project, write_subjects

PWNED = Path("/tmp/PWNED")


def _queued_names(sandbox) -> list[str]:
    queue = sandbox.cli("ssh", "--", "squeue", "-h", "-t", "all", "-o", "%j")
    assert queue.returncode == 0, err(queue)
    return out(queue).split()


def _assert_one_error_line(result) -> None:
    lines = err(result).strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: "), err(result)


# What the sandbox's daemons own and change on their own time: slurmctld purges ended jobs' scripts from its
# state dir minutes after they end (a CI run saw hash.3/job.13 go mid-test), and logs and pid files come
# and go with the daemons. The test asks that clustertools wrote nothing, so it compares everything else.
_DAEMON_DIRS = ("sandbox/slurm/state", "sandbox/log", "sandbox/run", "sandbox/s3", "sandbox/registry")


def _files_clustertools_owns(state: Path) -> list[Path]:
    owned = (p for p in state.rglob("*") if p.is_file())
    return sorted(p for p in owned if not any(p.relative_to(state).is_relative_to(d) for d in _DAEMON_DIRS))


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def test_the_pwned_run_name_runs_nothing_and_queues_nothing(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "hostile-name")
    subjects = write_subjects(project, ["sub-01", "sub-02"])
    before, queued_before = _mtime(PWNED), _queued_names(sandbox)
    state_before = _files_clustertools_owns(sandbox.state)
    result = sandbox.cli("submit", str(subjects), "--name", "x\ntouch /tmp/PWNED\n#", cwd=project)
    _assert_one_error_line(result)
    assert "not a run name" in err(result)
    assert _mtime(PWNED) == before, "touch ran"
    assert [n for n in _queued_names(sandbox) if n not in queued_before] == []
    assert _files_clustertools_owns(sandbox.state) == state_before


def test_a_run_name_that_is_a_path_writes_nothing_outside_its_homes(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "hostile-path")
    subjects = write_subjects(project, ["sub-01"])
    marker = f"ct-escape-{uuid.uuid4().hex[:8]}"
    result = sandbox.cli("submit", str(subjects), "--name", f"../../../../../../../../tmp/{marker}", cwd=project)
    _assert_one_error_line(result)
    assert glob.glob(f"/tmp/{marker}*") == [] and glob.glob(os.path.expanduser(f"~/{marker}*")) == []
    assert not [n for n in _queued_names(sandbox) if marker in n]


def test_dash_c_and_forget_with_a_path_touch_no_file_outside_the_state_dir(sandbox, tmp_path):
    victim = sandbox.state.parent / f"victim-{uuid.uuid4().hex[:8]}"
    for suffix in (".json", ".known_hosts"):
        victim.with_suffix(suffix).write_text("{}")
    relative = f"../../{victim.name}"  # from <state>/clusters/
    forgot = sandbox.cli("forget", relative)
    _assert_one_error_line(forgot)
    assert victim.with_suffix(".json").exists() and victim.with_suffix(".known_hosts").exists()
    reached = sandbox.cli("ssh", "-c", relative, "--", "true")
    _assert_one_error_line(reached)
    assert "not a cluster name" in err(reached)
