"""Issue 11 item 2: names become paths. Each test here failed on 5147a17 (public functions only, so the
same file runs against the old code)."""

from __future__ import annotations

import json

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.runs.run_record import new_run_id
from cluster_tools.services.runs.results import ResultObject, plan_download
from cluster_tools.store.cluster_store import forget_cluster, load_cluster, resolve_cluster_name, save_cluster
from cluster_tools.store.run_store import load_run, save_run
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run


def test_forget_never_deletes_outside_the_state_dir(tmp_path):
    """Failed on 5147a17: `forget ../../../../tmp/victim` deleted victim.json and victim.known_hosts."""
    state = StateDir(tmp_path / "a" / "b" / "state")
    victim_json, victim_keys = tmp_path / "victim.json", tmp_path / "victim.known_hosts"
    victim_json.write_text("{}")
    victim_keys.write_text("host key")
    with pytest.raises(ConfigError):
        forget_cluster(state, "../../../../victim")
    assert victim_json.exists() and victim_keys.exists()


def test_dash_c_never_reads_a_json_file_outside_the_state_dir(tmp_path):
    """Failed on 5147a17: `-c ../x` read any JSON file as a cluster record."""
    state = StateDir(tmp_path / "state")
    (tmp_path / "state").mkdir()
    record = ClusterRecord(name="evil", host="attacker.example", user="u", known_hosts=tmp_path / "k")
    (tmp_path / "x.json").write_text(json.dumps(record.model_dump(mode="json")))
    with pytest.raises(ConfigError, match="not a cluster name"):
        load_cluster(state, "../x")
    with pytest.raises(ConfigError, match="not a cluster name"):
        resolve_cluster_name(state, "../x", None)


def test_a_run_name_that_is_a_path_writes_no_record(tmp_path):
    """Failed on 5147a17: `--name ../../../../tmp/x` wrote the run record outside the state dir."""
    state = StateDir(tmp_path / "a" / "b" / "state")
    with pytest.raises(ConfigError, match="not a run name"):
        new_run_id("../../../../x", "abc123")
    with pytest.raises(ConfigError):
        new_run_id("x\ntouch /tmp/PWNED\n#", "abc123")
    run = make_run().model_construct(**{**make_run().__dict__, "run_id": "../../../../x-20260101-000000-abc123"})
    with pytest.raises(ConfigError):
        save_run(state, run)
    assert not list(tmp_path.rglob("*.json"))


def test_a_run_id_that_is_a_path_is_never_read(tmp_path):
    state = StateDir(tmp_path / "state")
    (tmp_path / "x.json").write_text("{}")
    for bad in ("../x", "x\n", "/tmp/x"):
        with pytest.raises(ConfigError, match="not a run id"):
            load_run(state, bad)


def test_a_tampered_run_record_with_a_hostile_id_is_not_loaded(tmp_path):
    state = StateDir(tmp_path / "state")
    save_run(state, make_run())
    path = state.run_file("demo-1")
    data = json.loads(path.read_text())
    data["run_id"] = "x\ntouch /tmp/PWNED\n#"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="damaged"):
        load_run(state, "demo-1")


def test_a_cluster_name_in_a_record_is_checked(tmp_path):
    state = StateDir(tmp_path / "state")
    save_cluster(state, ClusterRecord(name="lab", host="h", user="u", known_hosts=tmp_path / "k"))
    with pytest.raises(ValueError):
        ClusterRecord(name="lab\n", host="h", user="u", known_hosts=tmp_path / "k")


def _obj(key: str) -> ResultObject:
    return ResultObject(key.partition("/")[0], key, 3, "")


def test_results_get_never_writes_through_a_symlink_in_the_destination(tmp_path):
    """Failed on 5147a17: a link at DEST/<subject> made the download write wherever it pointed."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub-01").symlink_to(outside)
    (dest / "sub-02" / "deep").mkdir(parents=True)
    (dest / "sub-02" / "deep" / "link").symlink_to(outside)
    (dest / "sub-03").mkdir()
    (dest / "sub-03" / "file.txt").symlink_to(outside / "target.txt")
    plan = plan_download(
        [_obj("sub-01/a.txt"), _obj("sub-02/deep/link/b.txt"), _obj("sub-03/file.txt"), _obj("sub-04/ok.txt")], dest
    )
    assert plan.refused == ["sub-01/a.txt", "sub-02/deep/link/b.txt", "sub-03/file.txt"]
    assert [d.key for d in plan.todo] == ["sub-04/ok.txt"]
    assert list(outside.iterdir()) == []


def test_a_destination_that_is_itself_a_link_is_the_users_choice(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "dest").symlink_to(real)
    plan = plan_download([_obj("sub-01/a.txt")], tmp_path / "dest")
    assert not plan.refused and [d.key for d in plan.todo] == ["sub-01/a.txt"]


@pytest.mark.parametrize("key", ["sub-01/../../x", "../x", "sub-01//abs", "sub-01/a/../../../x"])
def test_an_s3_key_with_dots_never_escapes_the_destination(tmp_path, key):
    plan = plan_download([_obj(key)], tmp_path / "dest")
    assert plan.refused == [key] and not plan.todo
    assert not (tmp_path / "x").exists()


# --- `clustertools get` (SFTP): names from the head node are data too -----------------------------


class _Remote:
    """A head node whose listing is given: what a hostile or broken server could answer."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def stat(self, path):
        from cluster_tools.transport.sftp_files import RemoteEntry

        return RemoteEntry(path, 0, 0o040755)  # the source: a directory

    def walk(self, root):
        from cluster_tools.transport.sftp_files import RemoteEntry

        return [RemoteEntry(name, 3, 0o100644) for name in self.names]


@pytest.mark.parametrize("name", ["../escaped", "a/../../escaped", "/etc/passwd", "a//b", "./a"])
def test_get_refuses_remote_names_that_climb_out(tmp_path, name):
    from cluster_tools.services.remote.transfer import plan_get

    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ConfigError, match="refused"):
        plan_get(_Remote([name]), "data", str(dest), recursive=True, force=True)


def test_get_never_writes_through_a_symlink_in_the_destination(tmp_path):
    """Failed on 5147a17: a link at DEST/data/sub made `get -r data DEST` write wherever it pointed."""
    from cluster_tools.services.remote.transfer import plan_get

    dest, outside = tmp_path / "dest", tmp_path / "outside"
    (dest / "data").mkdir(parents=True)
    outside.mkdir()
    (dest / "data" / "sub").symlink_to(outside)
    with pytest.raises(ConfigError, match="symbolic link"):
        plan_get(_Remote(["sub/x.txt"]), "data", str(dest), recursive=True, force=True)
    (dest / "data" / "sub").unlink()
    (dest / "data").rmdir()
    (dest / "data").symlink_to(outside)  # the copy's own directory, planted as a link
    with pytest.raises(ConfigError, match="symbolic link"):
        plan_get(_Remote(["x.txt"]), "data", str(dest), recursive=True, force=True)
    plan = plan_get(_Remote(["x.txt"]), "data", str(outside), recursive=True, force=True)  # a plain dest
    assert plan.target == str(outside / "data")
