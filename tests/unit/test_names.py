"""names.py: one fullmatched rule per kind of name, and paths built from names kept in their directory.

The regressions of issue 11 item 2, through the public functions, are in test_path_escape.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.errors import ConfigError
from cluster_tools.model import names
from cluster_tools.store.state_dir import StateDir

RULES = [
    names.PROJECT_NAME,
    names.RUN_NAME,
    names.RUN_ID,
    names.CLUSTER_NAME,
    names.SUBJECT_ID,
    names.NODE_NAME,
    names.PARTITION,
    names.QUEUE_NAME,
    names.BUCKET_NAME,
]
HOSTILE = [
    "ok\n",
    "ok\r",
    "ok\x00",
    "../ok",
    "ok/../x",
    "/etc/passwd",
    "..",
    ".",
    "",
    "-rf",
    "ok ok",
    "$(id)",
    "`id`",
    "ok;id",
    "'ok'",
    '"ok"',
    "ok\u2028x",
    "ökö",
    "ok\\x",
    "~root",
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
@pytest.mark.parametrize("value", HOSTILE)
def test_every_rule_refuses_hostile_names(rule, value):
    assert not rule.is_valid(value)
    with pytest.raises(names.InvalidName) as info:
        rule.check(value)
    assert "\n" not in info.value.one_line() and isinstance(info.value, ConfigError)


def test_queue_and_bucket_names_follow_parallelclusters_and_s3s_rules():
    assert names.QUEUE_NAME.is_valid("spot-1") and names.QUEUE_NAME.is_valid("defaults")
    assert not any(names.QUEUE_NAME.is_valid(v) for v in ("default", "Spot", "1spot", "a" * 26))
    assert names.BUCKET_NAME.is_valid("my.bucket-1") and names.BUCKET_NAME.is_valid("a" * 63)
    assert not any(names.BUCKET_NAME.is_valid(v) for v in ("my..bucket", "ab", "a" * 64, "Bucket", "bucket-"))


@given(st.text(max_size=80))
@settings(max_examples=200)
def test_a_valid_name_is_one_plain_path_component(text):
    for rule in RULES:
        if rule.is_valid(text):
            assert "/" not in text and text not in (".", "..") and not text.startswith(("-", "."))
            assert text.isascii() and text.isprintable()


def test_state_paths_are_built_from_checked_names_only(tmp_path):
    state = StateDir(tmp_path / "state")
    assert state.cluster_file("lab") == tmp_path / "state" / "clusters" / "lab.json"
    assert state.run_file("demo-1") == tmp_path / "state" / "runs" / "demo-1.json"
    for bad in ("../../../../tmp/x", "x\n", "a/b"):
        for build in (state.cluster_file, state.known_hosts, state.run_file, state.autostop_file):
            with pytest.raises(ConfigError):
                build(bad)


def test_a_record_path_that_is_a_link_out_of_the_state_dir_is_refused(tmp_path):
    state = StateDir(tmp_path / "state")
    state.clusters.mkdir(parents=True)
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (state.clusters / "lab.json").symlink_to(outside)
    with pytest.raises(names.PathEscape):
        state.cluster_file("lab")
