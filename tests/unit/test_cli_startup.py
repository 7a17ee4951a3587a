"""What the `clustertools` process does to start faster (issue 16) changes nothing a command sees."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from cluster_tools.cli.output import print_json

_CHECK = r"""
import sys
import cluster_tools.cli
import paramiko
assert "invoke.collection" not in sys.modules, "importing paramiko loaded invoke"
config = paramiko.SSHConfig.from_text('Match exec "exit 0"\n  User matched\nHost *\n  User plain\n')
assert config.lookup("h")["user"] == "matched", config.lookup("h")  # Match exec ran, through the real invoke
import invoke
assert invoke.Collection.__module__ == "invoke.collection"
print("ok")
"""


def test_invoke_is_imported_only_when_an_ssh_config_match_exec_needs_it():
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_json_output_writes_what_json_cannot_as_text(capsys):
    """orjson writes --json; dates, paths and integers beyond 64 bits come out as json's default=str wrote them."""
    when = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)
    print_json({"at": when, "path": Path("/x/y"), "n": 3, "f": 0.5, "s": 'ü"', 7: None})
    assert json.loads(capsys.readouterr().out) == {
        "at": str(when),
        "path": "/x/y",
        "n": 3,
        "f": 0.5,
        "s": 'ü"',
        "7": None,
    }
    print_json({"big": 2**70, "list": [1, 2]})
    assert json.loads(capsys.readouterr().out) == {"big": 2**70, "list": [1, 2]}


_EXIT = r"""
import atexit, sys, threading, time, weakref
from pathlib import Path
import cluster_tools.cli

out = Path(sys.argv[1])
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
class Held: pass
held = Held()
weakref.finalize(held, lambda: out.with_suffix(".finalized").write_text("ran"))
def late():
    time.sleep(0.3)
    out.with_suffix(".thread").write_text("ran")
threading.Thread(target=late).start()  # not a daemon: exit waits for it
sys.argv = ["clustertools", "--version"]
cluster_tools.cli.main()
"""


def test_what_runs_at_exit_still_runs_after_the_collector_is_frozen(tmp_path):
    """freeze_at_exit (issue 16) spares the interpreter's last collections, not the exit: atexit handlers, finalizers
    and a running thread all finish, and the command's output and exit code are its own."""
    done = subprocess.run(
        [sys.executable, "-c", _EXIT, str(tmp_path / "x")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "clustertools" in done.stdout, done.stderr
    for what in ("atexit", "finalized", "thread"):
        assert (tmp_path / f"x.{what}").read_text() == "ran", what
