"""State files are written as json.dump(indent=2, sort_keys=True) wrote them, now by orjson (a run record of
10,000 subjects is saved at each `status`): the same bytes for what state holds, json's for what orjson refuses."""

from __future__ import annotations

import json
import stat

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.store.state_dir import write_private_json


def _data(text):
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
        max_leaves=20,
    )


PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)  # names, paths, times


@settings(max_examples=200, deadline=None)
@given(_data(PRINTABLE))
def test_a_state_file_has_the_bytes_json_wrote(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("state") / "run.json"
    write_private_json(path, data)
    written = path.read_text(encoding="utf-8")
    assert json.loads(written) == data
    if not _has_float(data):  # a float's digits may differ (both are its shortest repr, or json's repr)
        assert written == json.dumps(data, indent=2, sort_keys=True) + "\n"


@settings(max_examples=100, deadline=None)
@given(_data(st.text(max_size=8)))
def test_any_text_reads_back_the_same(tmp_path_factory, data):
    """Beyond printable ASCII orjson writes UTF-8 where json wrote \\u escapes: the same JSON value."""
    path = tmp_path_factory.mktemp("state") / "run.json"
    write_private_json(path, data)
    assert json.loads(path.read_text(encoding="utf-8")) == data


def _has_float(data) -> bool:
    if isinstance(data, float):
        return True
    if isinstance(data, dict):
        return any(map(_has_float, data.values()))
    return isinstance(data, list) and any(map(_has_float, data))


def test_what_orjson_refuses_is_written_by_json_and_the_file_stays_private(tmp_path):
    path = tmp_path / "deep" / "run.json"
    write_private_json(path, {"big": 2**70, "name": "ü"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"big": 2**70, "name": "ü"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
