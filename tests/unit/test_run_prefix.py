"""A run is named by any prefix of its id that names it alone; several matches are one line listing them."""

from __future__ import annotations

import pytest

from cluster_tools.errors import ConfigError
from cluster_tools.store.run_store import resolve_run, save_run
from cluster_tools.store.state_dir import StateDir
from tests.unit.run_fixtures import make_run


@pytest.fixture
def state(tmp_path):
    state = StateDir(tmp_path / "state")
    for run_id in ("study-20261130-090904-3f3b74", "study-20261130-101010-aaaaaa", "other-20261129-080000-bbbbbb"):
        save_run(state, make_run().model_copy(update={"run_id": run_id, "project": run_id.split("-")[0]}))
    return state


def test_a_unique_prefix_names_its_run(state):
    assert resolve_run(state, "other", None).run_id == "other-20261129-080000-bbbbbb"
    assert resolve_run(state, "study-20261130-09", None).run_id == "study-20261130-090904-3f3b74"
    assert resolve_run(state, "study-20261130-101010-aaaaaa", None).run_id == "study-20261130-101010-aaaaaa"


def test_an_ambiguous_prefix_lists_the_runs_and_an_unknown_one_says_so(state):
    with pytest.raises(
        ConfigError, match="'study' is the start of 2 runs: study-20261130-090904-3f3b74, study-20261130-101010-aaaaaa"
    ):
        resolve_run(state, "study", None)
    with pytest.raises(ConfigError, match="no run 'nope' is known here"):
        resolve_run(state, "nope", None)
    with pytest.raises(ConfigError):
        resolve_run(state, "../etc", None)  # a name, never a path
