"""Subject lists: plain and CSV, hostile IDs and values refused in one error line naming the lines."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_tools.errors import ConfigError
from cluster_tools.model.runs.subjects import (
    ID_RE,
    RESERVED_NAMES,
    RESERVED_PREFIXES,
    SubjectList,
    parse_subject_list,
    read_subject_file,
)


def env_of(result: SubjectList, index: int) -> dict[str, str]:
    """Task ``index``'s values by column, as the run's manifest hands them to it ({} for a plain list)."""
    return dict(zip(result.columns, result.rows[index], strict=True)) if result.rows else {}


def error_of(text: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        parse_subject_list(text, **kwargs)
    message = info.value.one_line()
    assert "\n" not in info.value.message and "\r" not in info.value.message
    return message


# --- plain lists -------------------------------------------------------------------------------


def test_a_plain_list_skips_comments_and_blank_lines_and_keeps_file_order():
    text = "# subjects of study A\n\nsub-02\n   # indented comment\n  sub-01  \n\n\tsub-10\t\n"
    result = parse_subject_list(text)
    assert result.ids == ("sub-02", "sub-01", "sub-10")
    assert result.columns == () and result.rows == () and len(result) == 3
    assert env_of(result, 0) == {}


def test_crlf_and_a_bom_are_tolerated():
    assert parse_subject_list("\ufeffsub-01\r\nsub-02\r\n# c\r\n\r\n").ids == ("sub-01", "sub-02")


def test_ids_may_use_letters_digits_dot_underscore_dash():
    assert parse_subject_list("A1\n0.5\nsub_01-b.v2\n" + "x" * 128).ids == ("A1", "0.5", "sub_01-b.v2", "x" * 128)


HOSTILE = [
    "a;rm -rf ~",
    "$(id)",
    "`id`",
    "a b",
    '"quoted"',
    "'quoted'",
    "a\rb",  # a lone CR mid-line is not a line break
    "a\tb",
    "sübject",
    ".hidden",
    "..",
    "-rf",
    "x" * 129,
    "a/b",
    "a\x1fb",
    "a\x00b",
    "\u00a0sub",  # a non-ASCII space is not stripped but shown
    "sub,01",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_hostile_id_is_refused_and_named_by_line(bad):
    message = error_of(f"sub-01\n# comment\n{bad}\nsub-02\n", as_csv=False)
    assert message.startswith("subjects.txt: 1 invalid subject ID (")
    shown = repr(bad) if len(bad) <= 60 else repr(bad[:50])
    assert f"line 3 {shown}" in message
    assert "nothing was submitted" in message


def test_all_problems_of_a_file_come_in_one_error_line():
    text = "\n".join(["sub-01", *HOSTILE, "sub-01", "sub-02", "sub-02"])
    message = error_of(text, as_csv=False)
    assert message.startswith(f"subjects.txt: {len(HOSTILE)} invalid subject IDs (")
    assert "line 2 'a;rm -rf ~', line 3 '$(id)', line 4 '`id`'" in message
    assert f"and {len(HOSTILE) - 10} more" in message  # at most 10 examples per kind
    assert "2 duplicates: line 20 'sub-01' (first on line 1), line 22 'sub-02' (first on line 21)" in message


def test_a_duplicate_names_both_lines():
    message = error_of("sub-01\nsub-02\n\nsub-01\n")
    assert message.startswith("subjects.txt: 1 duplicate: line 4 'sub-01' (first on line 1)")


@pytest.mark.parametrize("as_csv", [False, True])
def test_ids_that_differ_only_in_case_are_refused(as_csv):
    """`Sub-1` and `sub-1` are one directory on a case-insensitive filesystem and in S3 sync tools."""
    text = "subject,age\nsub-1,3\nSub-1,4\n" if as_csv else "sub-1\nSUB-2\nSub-1\nsub-2\n"
    message = error_of(text)
    if as_csv:
        assert "1 ID that differs from another only in case: line 3 'Sub-1' (line 2 has 'sub-1')" in message
    else:
        assert (
            "2 IDs that differ from others only in case: line 3 'Sub-1' (line 1 has 'sub-1'), "
            "line 4 'sub-2' (line 2 has 'SUB-2')"
        ) in message


def test_many_duplicates_are_summarised():
    message = error_of("\n".join(["sub-01"] * 50))
    assert "49 duplicates: line 2 'sub-01' (first on line 1)" in message and "and 39 more" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n   # another\n", "\ufeff", "  \r\n\t\n"])
def test_an_empty_list_is_refused(text):
    assert error_of(text).startswith("subjects.txt has no subjects")


def test_a_hundred_thousand_ids_parse():
    ids = [f"sub-{i:06d}" for i in range(100_000)]
    result = parse_subject_list("\n".join(ids) + "\n")
    assert result.ids == tuple(ids) and len(result) == 100_000


# --- CSV -----------------------------------------------------------------------------------------


CSV = """\
# participants of study A, "quotes" here do not open a field
subject,AGE,site_name,notes
sub-01,34,Bergen,plain
sub-02,41,"Oslo, Norway","he said ""hi""; then $(id) `id` ~ $HOME 'x'"

sub-03,29,  spaced  ,
#sub-04,1,2,3
"""


def test_a_csv_gives_ids_and_env_values_exactly_as_written():
    result = parse_subject_list(CSV, "participants.csv")
    assert result.ids == ("sub-01", "sub-02", "sub-03")
    assert result.columns == ("AGE", "site_name", "notes")
    assert env_of(result, 0) == {"AGE": "34", "site_name": "Bergen", "notes": "plain"}
    assert env_of(result, 1) == {
        "AGE": "41",
        "site_name": "Oslo, Norway",
        "notes": "he said \"hi\"; then $(id) `id` ~ $HOME 'x'",
    }
    assert env_of(result, 2) == {"AGE": "29", "site_name": "  spaced  ", "notes": ""}
    assert result.rows[2] == ("29", "  spaced  ", "")


@pytest.mark.parametrize("name", ["subject", "Subject_ID", "participant_id", "ID"])
def test_the_id_column_may_have_any_of_the_usual_names_and_sit_anywhere(name):
    result = parse_subject_list(f"x,{name},y\n1,sub-01,2\r\n3,sub-02,4\r\n")
    assert result.ids == ("sub-01", "sub-02") and result.columns == ("x", "y")
    assert env_of(result, 1) == {"x": "3", "y": "4"}


def test_a_csv_without_an_id_column_gets_generated_ids():
    result = parse_subject_list("age,site\n1,a\n2,b\n3,c\n", as_csv=True)
    assert result.ids == ("task-00001", "task-00002", "task-00003")
    assert env_of(result, 2) == {"age": "3", "site": "c"}


def test_generated_ids_widen_for_huge_lists():
    result = parse_subject_list("n\n" + "\n".join(str(i) for i in range(100_000)) + "\n", as_csv=True)
    assert result.ids[0] == "task-000001" and result.ids[-1] == "task-100000"


def test_an_id_column_only_csv_has_no_env():
    result = parse_subject_list("subject\nsub-01\n", as_csv=True)
    assert result.ids == ("sub-01",) and result.columns == () and env_of(result, 0) == {}


def test_csv_is_detected_by_the_first_content_line_only():
    assert parse_subject_list("# a, b\n\nsub-01\n").ids == ("sub-01",)
    assert parse_subject_list("\n# c\nsubject,a\nsub-01,1\n").columns == ("a",)
    assert "1 invalid subject ID" in error_of("sub-01\nsub-02,x\n")


@pytest.mark.parametrize(
    "header, expected",
    [
        ("subject,2x", "1 bad column name (letters, digits and '_', not starting with a digit, e.g. AGE): line 1 '2x'"),
        ("subject,a-b", "line 1 'a-b'"),
        ("subject,a b", "line 1 'a b'"),
        ("subject,$(id)", "line 1 '$(id)'"),
        ("subject,age,", "line 1 ''"),
        ("subject,PATH", "1 reserved column name (compared case-insensitively): line 1 'PATH'"),
        ("subject,LD_PRELOAD", "reserved column name (compared case-insensitively): line 1 'LD_PRELOAD'"),
        ("subject,SLURM_ARRAY_TASK_ID", "line 1 'SLURM_ARRAY_TASK_ID'"),
        ("subject,AWS_SECRET_ACCESS_KEY", "line 1 'AWS_SECRET_ACCESS_KEY'"),
        ("subject,CT_X", "line 1 'CT_X'"),
        ("subject,BASH_ENV", "line 1 'BASH_ENV'"),
        ("subject,IFS", "line 1 'IFS'"),
        ("participant_id,SUBJECT", "line 1 'SUBJECT'"),
        ("subject,HOME", "reserved column name (compared case-insensitively): line 1 'HOME'"),
        # compared case-insensitively (issue 11: `path` was accepted), and Python's own variables
        ("subject,path", "reserved column name (compared case-insensitively): line 1 'path'"),
        ("subject,pythonpath", "line 1 'pythonpath'"),
        ("subject,PYTHONPATH", "line 1 'PYTHONPATH'"),
        ("subject,PythonStartup", "line 1 'PythonStartup'"),
        ("subject,ld_preload", "line 1 'ld_preload'"),
        ("subject,aws_access_key_id", "line 1 'aws_access_key_id'"),
        ("subject,https_proxy", "line 1 'https_proxy'"),
        ("subject,Home", "line 1 'Home'"),
        ("subject,age,age", "1 duplicate column name: line 1 'age'"),
    ],
)
def test_bad_reserved_and_duplicate_headers_are_refused(header, expected):
    columns = header.count(",")
    message = error_of(f"{header}\nsub-01{',1' * columns}\n")
    assert expected in message


def test_all_header_problems_come_together():
    message = error_of("subject,2x,PATH,ok,ok\nsub-01,1,2,3,4\n")
    assert "bad column name" in message and "reserved column name" in message and "duplicate column name" in message


def test_ragged_rows_are_refused_by_line():
    message = error_of("subject,a,b\nsub-01,1,2\nsub-02,1\nsub-03,1,2,3\nsub-04,1,2\n")
    assert message.startswith(
        "subjects.txt: 2 rows with the wrong number of fields (the header has 3): line 3 (2 fields), line 4 (4 fields)"
    )


@pytest.mark.parametrize("value", ['"a\nb"', '"a\r\nb"', '"a\rb"', "a\x1fb", "a\x00b"])
def test_values_with_newlines_and_separators_are_refused(value):
    message = error_of(f"subject,note\nsub-01,ok\nsub-02,{value}\nsub-03,ok\n")
    assert message.startswith("subjects.txt: 1 value with NUL, newline, CR or \\x1f: line 3 column 'note' ")


def test_a_quoted_newline_cannot_smuggle_an_id():
    message = error_of('subject,a\n"sub-01\nsub-02",1\nsub-03,1\n')
    assert "1 invalid subject ID" in message and "line 2 'sub-01\\nsub-02'" in message


def test_line_numbers_after_a_multi_line_field_stay_right():
    message = error_of('subject,a\nsub-01,"x\ny"\nsub-01,1\n')
    assert "line 2 column 'a' 'x\\ny'" in message and "line 4 'sub-01' (first on line 2)" in message


def test_csv_ids_follow_the_id_rules_and_duplicates():
    message = error_of("id,a\nsub-01,1\n$(id),2\n-rf,3\nsub-01,4\n")
    assert "2 invalid subject IDs" in message and "line 3 '$(id)', line 4 '-rf'" in message
    assert "1 duplicate: line 5 'sub-01' (first on line 2)" in message


def test_a_stray_carriage_return_is_refused_with_its_line():
    assert "line 3: not valid CSV: a carriage return" in error_of("subject,a\nsub-01,1\nsub-02,x\ry\n")


@pytest.mark.parametrize("text", ["subject,a\n", "subject,a\n\n# none\n", "# c\n"])
def test_an_empty_csv_is_refused(text):
    assert error_of(text, as_csv=True).startswith("subjects.txt has no subjects")


# --- files ---------------------------------------------------------------------------------------


def test_read_subject_file_decides_csv_by_suffix(tmp_path):
    path = tmp_path / "people.CSV"
    path.write_bytes(b"\xef\xbb\xbfsubject\r\nsub-01\r\n")
    assert read_subject_file(path) == SubjectList(ids=("sub-01",), columns=(), rows=((),))
    plain = tmp_path / "subjects.txt"
    plain.write_text("subject,a\nsub-01,1\n")
    assert read_subject_file(plain).columns == ("a",)


def test_read_subject_file_names_the_file_when_unreadable_or_not_utf8(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("missing.txt")):
        read_subject_file(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"sub-01\nsub-\xfc\n")
    with pytest.raises(ConfigError) as info:
        read_subject_file(bad)
    assert info.value.message == f"{bad}: line 2: not UTF-8 text (byte 0xfc)"


def test_errors_name_the_source():
    with pytest.raises(ConfigError, match=r"^lists/a\.txt: 1 invalid"):
        parse_subject_list("a b\n", "lists/a.txt")


# --- properties ----------------------------------------------------------------------------------

NASTY = st.sampled_from([*"ab1-._,#\"' \t\r\n\x00\x1f\ufeff$;`\u00fc\u2028", "subject", "id", "PATH"])
TEXTS = st.one_of(st.text(), st.lists(NASTY, max_size=60).map("".join))


@settings(max_examples=300)
@given(TEXTS, st.sampled_from([None, True, False]))
def test_any_text_gives_valid_unique_ids_or_a_config_error(text, as_csv):
    try:
        result = parse_subject_list(text, as_csv=as_csv)
    except ConfigError as exc:
        assert "\n" not in exc.one_line()
        return
    assert len(result) > 0 and len({sid.lower() for sid in result.ids}) == len(result.ids)
    assert all(ID_RE.fullmatch(sid) for sid in result.ids)
    for i in range(len(result)):
        assert set(env_of(result, i)) == set(result.columns)


VALID_IDS = st.lists(st.from_regex(ID_RE, fullmatch=True), min_size=1, max_size=50, unique_by=str.lower)


@given(VALID_IDS)
def test_valid_id_lists_round_trip(ids):
    assert parse_subject_list("\n".join(ids)).ids == tuple(ids)
    assert parse_subject_list("\r\n".join(ids) + "\r\n").ids == tuple(ids)


RESERVED_IN_ANY_CASE = st.one_of(
    st.sampled_from(sorted(RESERVED_NAMES)),
    st.tuples(st.sampled_from(RESERVED_PREFIXES), st.from_regex(r"[A-Za-z0-9_]{0,8}", fullmatch=True)).map("".join),
).flatmap(
    lambda name: st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True))
    )
)


@given(RESERVED_IN_ANY_CASE)
def test_a_reserved_name_in_any_case_is_refused(name):
    assert f"reserved column name (compared case-insensitively): line 1 {name!r}" in error_of(f"subject,{name}\ns,1\n")
