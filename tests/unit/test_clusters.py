"""Known clusters: names, the default choice, SSH destinations (incl. ~/.ssh/config aliases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_tools.errors import ClusterNotFound, ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.names import CLUSTER_NAME
from cluster_tools.services.clusters.register import resolve_destination
from cluster_tools.store.cluster_store import (
    forget_cluster,
    list_clusters,
    load_cluster,
    resolve_cluster_name,
    save_cluster,
)
from cluster_tools.store.state_dir import StateDir


def record(state: StateDir, name: str) -> ClusterRecord:
    return ClusterRecord(name=name, host="h", user="u", known_hosts=state.known_hosts(name))


def test_round_trip_and_private_files(state_dir):
    state = StateDir(state_dir)
    save_cluster(state, record(state, "alpha"))
    assert load_cluster(state, "alpha").host == "h"
    assert oct(state.cluster_file("alpha").stat().st_mode & 0o777) == "0o600"
    assert [r.name for r in list_clusters(state)] == ["alpha"]
    assert forget_cluster(state, "alpha") and not forget_cluster(state, "alpha")


def test_the_default_cluster(state_dir):
    state = StateDir(state_dir)
    with pytest.raises(ClusterNotFound, match="no cluster is known"):
        resolve_cluster_name(state, None, None)
    save_cluster(state, record(state, "one"))
    assert resolve_cluster_name(state, None, None) == "one"
    save_cluster(state, record(state, "two"))
    with pytest.raises(ClusterNotFound, match="none was chosen"):
        resolve_cluster_name(state, None, None)
    assert resolve_cluster_name(state, None, "two") == "two"
    assert resolve_cluster_name(state, "one", "two") == "one"


def test_an_unknown_cluster_lists_the_known_ones(state_dir):
    state = StateDir(state_dir)
    save_cluster(state, record(state, "one"))
    with pytest.raises(ClusterNotFound, match=r"known: one"):
        load_cluster(state, "nope")


def test_a_corrupt_record_is_a_config_error(state_dir):
    state = StateDir(state_dir)
    state.clusters.mkdir(parents=True)
    state.cluster_file("bad").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_cluster(state, "bad")
    assert list_clusters(state) == []


@given(st.text(max_size=70))
def test_cluster_names_follow_parallelclusters_rule(name):
    valid = bool(CLUSTER_NAME.pattern.fullmatch(name))
    try:
        ClusterRecord(name=name, host="h", user="u", known_hosts=Path("/k"))
        assert valid
    except ValueError:
        assert not valid


SSH_CONFIG = """
Host hpc
  HostName login.hpc.example.edu
  User alice
  Port 2222
  IdentityFile ~/.ssh/id_hpc
"""


@pytest.mark.parametrize(
    "dest, expected",
    [
        ("hpc", ("login.hpc.example.edu", 2222, "alice")),
        ("bob@hpc", ("login.hpc.example.edu", 2222, "bob")),
        ("bob@10.1.2.3:2200", ("10.1.2.3", 2200, "bob")),
        ("carol@[::1]:22", ("::1", 22, "carol")),
    ],
)
def test_destinations(dest, expected):
    got = resolve_destination(dest, port=None, user=None, identity_file=None, ssh_config_text=SSH_CONFIG)
    assert (got.host, got.port, got.user) == expected


def test_the_ssh_config_identity_and_explicit_options_win():
    got = resolve_destination("hpc", port=22, user="dave", identity_file=None, ssh_config_text=SSH_CONFIG)
    assert (got.port, got.user) == (22, "dave") and got.identity_file == Path("~/.ssh/id_hpc").expanduser()


@pytest.mark.parametrize("dest", ["", "a b", "user@", "h:port", "x@y@z"])
def test_bad_destinations(dest):
    with pytest.raises(ConfigError):
        resolve_destination(dest, port=None, user=None, identity_file=None, ssh_config_text=None)
