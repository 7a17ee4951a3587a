"""put/get plans: into a directory or onto a name, -r, no overwrite without --force, ~ paths, odd names.
The head node is stood in for by a local directory with the same interface as transport's RemoteFiles."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.services.remote.transfer import Listener, execute, plan_get, plan_put, remote_path
from cluster_tools.transport.sftp_files import RemoteEntry


class LocalRemote:
    """RemoteFiles over a local directory standing for the login's home."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _p(self, path: str) -> Path:
        return Path(path) if path.startswith("/") else self.home / path

    def stat(self, path):
        p = self._p(path)
        return RemoteEntry(path, p.stat().st_size, p.stat().st_mode) if p.exists() else None

    def walk(self, root):
        base = self._p(root)
        out = []
        for current, dirs, files in os.walk(base):
            dirs.sort()
            for name in dirs + sorted(files):
                p = Path(current) / name
                out.append(RemoteEntry(p.relative_to(base).as_posix(), p.stat().st_size, p.stat().st_mode))
        return out

    def mkdir(self, path):
        self._p(path).mkdir(exist_ok=True)

    def upload(self, local, remote, *, mode, progress):
        shutil.copyfile(local, self._p(remote))
        progress(local.stat().st_size, local.stat().st_size)

    def download(self, remote, local, *, mode, progress):
        shutil.copyfile(self._p(remote), local)


ODD = ["a b.txt", 'it\'s "q".txt', "$(id);`id`.txt", "line\nbreak.txt", "-rf"]


def refusal(plan, *args, **kwargs) -> str:
    """The one line a user would read for a refused plan."""
    with pytest.raises(ConfigError) as info:
        plan(*args, **kwargs)
    return info.value.one_line()


@pytest.fixture
def sides(tmp_path):
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    return LocalRemote(home), home, here


def test_tilde_means_home():
    assert remote_path("~") == "." and remote_path("~/x/y") == "x/y" and remote_path("/abs") == "/abs"
    with pytest.raises(ConfigError):
        remote_path("~root/x")


def test_put_a_file_into_home_then_refuse_to_overwrite_without_force(sides):
    remote, home, here = sides
    (here / "f.txt").write_text("one")
    plan = plan_put(remote, here / "f.txt", None, recursive=False, force=False)
    execute(remote, plan, Listener())
    assert (home / "f.txt").read_text() == "one" and plan.target == "f.txt"
    assert (
        refusal(plan_put, remote, here / "f.txt", "~/", recursive=False, force=False)
        == "already on the head node: f.txt (hint: pass --force to replace them)"
    )
    (here / "f.txt").write_text("two")
    execute(remote, plan_put(remote, here / "f.txt", "~/f.txt", recursive=False, force=True), Listener())
    assert (home / "f.txt").read_text() == "two"


def test_put_onto_a_new_name_needs_its_directory(sides):
    remote, _, here = sides
    (here / "f").write_text("x")
    assert plan_put(remote, here / "f", "g", recursive=False, force=False).target == "g"
    with pytest.raises(ConfigError, match="no directory nope"):
        plan_put(remote, here / "f", "nope/g", recursive=False, force=False)
    with pytest.raises(ConfigError, match="no directory"):
        plan_put(remote, here / "f", "nope/", recursive=False, force=False)


def test_a_directory_needs_r_and_odd_names_arrive_verbatim(sides):
    remote, home, here = sides
    tree = here / "d"
    (tree / "sub dir").mkdir(parents=True)
    for name in ODD:
        (tree / name).write_text(name)
        (tree / "sub dir" / name).write_text("deep " + name)
    assert "pass -r" in refusal(plan_put, remote, tree, None, recursive=False, force=False)
    plan = plan_put(remote, tree, "~/copy", recursive=True, force=False)
    assert plan.directories == ("copy", "copy/sub dir") and len(plan.files) == 2 * len(ODD)
    execute(remote, plan, Listener())
    assert sorted(p.name for p in (home / "copy").iterdir()) == sorted([*ODD, "sub dir"])
    assert (home / "copy" / "sub dir" / "line\nbreak.txt").read_text() == "deep line\nbreak.txt"
    (home / "copy" / "a b.txt").write_text("changed there")
    (home / "d").symlink_to(home / "copy")  # `put -r d ~` now lands on the same files
    assert " and 5 more (hint: pass --force" in refusal(plan_put, remote, tree, "~", recursive=True, force=False)
    execute(remote, plan_put(remote, tree, "~", recursive=True, force=True), Listener())
    assert (home / "copy" / "a b.txt").read_text() == "a b.txt"


def test_get_into_the_current_directory_and_refuse_to_overwrite(sides, monkeypatch):
    remote, home, here = sides
    (home / "r.txt").write_text("remote")
    monkeypatch.chdir(here)
    execute(remote, plan_get(remote, "~/r.txt", None, recursive=False, force=False), Listener())
    assert (here / "r.txt").read_text() == "remote"
    with pytest.raises(ConfigError, match="already on this machine"):
        plan_get(remote, "r.txt", str(here), recursive=False, force=False)
    assert plan_get(remote, "r.txt", str(here), recursive=False, force=True).files[0].target == str(here / "r.txt")
    with pytest.raises(ConfigError, match="no such file"):
        plan_get(remote, "missing", None, recursive=False, force=False)


def test_get_a_directory_with_r(sides):
    remote, home, here = sides
    (home / "out" / "s 1").mkdir(parents=True)
    (home / "out" / "s 1" / "$(id).json").write_text("{}")
    assert "pass -r" in refusal(plan_get, remote, "out", str(here), recursive=False, force=False)
    plan = plan_get(remote, "out", str(here), recursive=True, force=False)
    execute(remote, plan, Listener())
    assert (here / "out" / "s 1" / "$(id).json").read_text() == "{}"
    with pytest.raises(ConfigError, match="already on this machine"):
        plan_get(remote, "out", str(here), recursive=True, force=False)
    with pytest.raises(ConfigError, match="no directory"):
        plan_get(remote, "out", str(here / "nope") + "/", recursive=True, force=False)
