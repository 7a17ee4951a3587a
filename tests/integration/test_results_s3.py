"""`results` against a real S3 endpoint (moto's server on 127.0.0.1): services and the CLI."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cluster_tools.model.project.project_config import JobSpec
from cluster_tools.model.runs.run_record import Attempt, RunRecord
from cluster_tools.services.runs import results as svc
from cluster_tools.store.run_store import save_run
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.s3 import MULTIPART_THRESHOLD, S3Target, make_s3_client
from tests.helpers import err, out, run_cli
from tests.moto_aws import moto_server

_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def client(endpoint):
    return make_s3_client(S3Target(region="us-east-1", endpoint_url=endpoint, sandbox=True), raw_timestamps=True)


def new_run(
    client,
    endpoint: str,
    subjects: list[str],
    objects: dict[str, bytes],
    *,
    bucket: str | None = None,
    prefix: str = "out",
) -> RunRecord:
    """A bucket of its own holding ``objects`` (keys relative to the run prefix) and the run's record."""
    bucket = bucket or f"results-{next(_names)}-{os.getpid()}"
    client.create_bucket(Bucket=bucket)
    run = RunRecord(
        run_id=f"study-20240501-120000-{next(_names):06d}",
        project="study",
        cluster="sandbox",
        created_at="2024-05-01T12:00:00+00:00",
        spec_hash="abcdef",
        remote_dir="~/.clustertools/runs/x",
        output=f"s3://{bucket}/{prefix}",
        s3_endpoint_url=endpoint,
        sandbox_s3=True,
        job=JobSpec(),
        attempts=[Attempt(number=1, subjects=subjects)],
    )
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=bucket, Key=f"{run.run_prefix}/{kv[0]}", Body=kv[1]),
                objects.items(),
            )
        )
    return run


def where(run: RunRecord) -> tuple[str, str]:
    return run.output_location.bucket, run.run_prefix


def cli(run: RunRecord, state: Path, *args: str, **kwargs):
    save_run(StateDir(state), run)
    return run_cli("results", *args, state=state, **kwargs)


HOSTILE = [
    "sub-01/with space.txt",
    'sub-01/it\'s "quoted".txt',
    "sub-01/$(id) `x`;.txt",
    "sub-01/ünï+cødé%20.txt",
    "sub-01/deep/a&b=c?d#e.txt",
]


@pytest.fixture(scope="module")
def big(client, endpoint):
    """2,500 result keys over 50 subjects (3 pages), plus metadata keys and two strays."""
    subjects = [f"sub-{i:03d}" for i in range(50)]
    objects = {
        f"{s}/file-{j:02d}.dat": b"x" * (i % 7) for i, (s, j) in enumerate(itertools.product(subjects, range(50)))
    }
    objects |= {f".clustertools/records/{i:05d}.json": b"{}" for i in range(40)}
    objects |= {"stray.txt": b"s", "not a subject/x": b"n"}
    return new_run(client, endpoint, subjects, objects)


def test_ls_pages_over_every_result_and_skips_the_metadata(client, big, state_dir):
    listing = svc.list_results(client, *where(big))
    keys = [o.key for o in listing.objects]
    assert len(keys) == 2500 and keys == sorted(keys) and listing.ignored == 2
    assert not any(".clustertools" in k for k in keys)
    assert {o.subject for o in listing.objects} == set(big.subjects)

    result = cli(big, state_dir, "ls", big.run_id, "--json")
    assert result.returncode == 0, err(result)
    entries = json.loads(out(result))
    assert len(entries) == 2500 and set(entries[0]) == {"subject", "key", "size", "last_modified"}
    assert entries[1] == {
        "subject": "sub-000",
        "key": "sub-000/file-01.dat",
        "size": 1,
        "last_modified": entries[1]["last_modified"],
    }
    assert entries[1]["last_modified"].startswith("20")


def test_ls_of_some_subjects(client, big, state_dir):
    few = svc.list_results(client, *where(big), ["sub-007", "sub-003"])
    assert {o.subject for o in few.objects} == {"sub-003", "sub-007"} and len(few.objects) == 100
    assert [o.key for o in few.objects] == sorted(o.key for o in few.objects)
    many = big.subjects[5:45]  # more than PER_SUBJECT_LISTING_MAX: one listing, filtered
    listed = svc.list_results(client, *where(big), many)
    assert len(listed.objects) == 40 * 50 and {o.subject for o in listed.objects} == set(many)

    result = cli(big, state_dir, "ls", big.run_id, "sub-003")
    lines = out(result).splitlines()
    assert result.returncode == 0 and len(lines) == 50 and lines[0].endswith("  sub-003/file-00.dat")
    assert "50 objects" in err(result)


def test_ls_defaults_to_the_latest_run_and_rejects_bad_subjects(client, endpoint, state_dir):
    run = new_run(client, endpoint, ["s1"], {"s1/a": b"1"})
    assert cli(run, state_dir, "ls").returncode == 0
    bad = run_cli("results", "ls", run.run_id, "../other", state=state_dir)
    assert bad.returncode == 1 and err(bad).startswith("Error: not a subject name")


def test_get_downloads_every_file_then_skips_them(client, endpoint, state_dir, tmp_path):
    objects = {key: key.encode() * 3 for key in HOSTILE}
    objects |= {"sub-02/empty": b"", "sub-02/dir/": b"", "sub-03/big.bin": os.urandom(MULTIPART_THRESHOLD + 5)}
    run = new_run(client, endpoint, ["sub-01", "sub-02", "sub-03"], objects)
    dest = tmp_path / "dl"
    result = cli(run, state_dir, "get", run.run_id, "-o", str(dest), "--jobs", "4")
    assert result.returncode == 0, err(result)
    for key, body in objects.items():
        if not key.endswith("/"):
            assert (dest / key).read_bytes() == body
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted(k for k in objects if not k.endswith("/"))  # no temporary files left
    assert "downloaded 7 files" in err(result)

    again = cli(run, state_dir, "get", run.run_id, "-o", str(dest))
    assert again.returncode == 0 and "downloaded 0 files" in err(again) and "skipped 7" in err(again)

    (dest / "sub-01" / "with space.txt").write_bytes(b"changed size")
    some = cli(run, state_dir, "get", run.run_id, "sub-01", "-o", str(dest))
    assert "downloaded 1 files" in err(some) and "skipped 4" in err(some)
    assert (dest / "sub-01" / "with space.txt").read_bytes() == objects["sub-01/with space.txt"]


def test_get_defaults_to_a_directory_named_after_the_run(client, endpoint, state_dir, tmp_path):
    run = new_run(client, endpoint, ["s1"], {"s1/a.txt": b"abc"})
    result = cli(run, state_dir, "get", run.run_id, cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / run.run_id / "s1" / "a.txt").read_bytes() == b"abc"


def test_get_refuses_keys_that_would_escape_the_directory(client, endpoint, state_dir, tmp_path):
    run = new_run(
        client,
        endpoint,
        ["sub-01"],
        {
            "sub-01/ok.txt": b"ok",
            "sub-01/../../escaped.txt": b"evil",
            "sub-01//etc/evil.txt": b"evil",
            "sub-01/a/../../../b.txt": b"evil",
        },
    )
    keys = [o.key for o in svc.list_results(client, *where(run)).objects]
    assert "sub-01/../../escaped.txt" in keys  # the endpoint kept the key as it is
    dest = tmp_path / "inner" / "dl"
    result = cli(run, state_dir, "get", run.run_id, "-o", str(dest))
    assert result.returncode == 1
    assert (dest / "sub-01" / "ok.txt").read_bytes() == b"ok"
    assert [p.name for p in (tmp_path / "inner").rglob("*") if p.is_file()] == ["ok.txt"]
    assert not Path("/etc/evil.txt").exists()
    assert sum(line.startswith("refused ") for line in err(result).splitlines()) == 3 and err(result).splitlines()[
        -1
    ].startswith("Error: 3 of")


def test_du_counts_bytes_and_objects(client, big, state_dir):
    usage = svc.results_usage(client, *where(big))
    assert len(usage.subjects) == 50 and usage.objects == 2500
    assert usage.bytes == sum(i % 7 for i in range(2500))
    result = cli(big, state_dir, "du", big.run_id, "--json")
    data = json.loads(out(result))
    assert result.returncode == 0 and data["objects"] == 2500 and data["bytes"] == usage.bytes
    assert data["run"] == big.run_id and data["subjects"][0]["subject"] == "sub-000"
    table = cli(big, state_dir, "du", big.run_id)
    assert table.returncode == 0 and "total" in out(table) and "2500" in out(table)


def test_check_names_the_subjects_without_output(client, endpoint, state_dir):
    run = new_run(
        client,
        endpoint,
        ["s1", "s2", "s3", "s4"],
        {"s1/a": b"1", "s3/deep/b": b"2", ".clustertools/records/s2.json": b"{}", "s4x/c": b"3"},
    )
    assert svc.subjects_with_output(client, run) == {"s1", "s3"}
    assert svc.check_outputs(client, *where(run), run.subjects).missing == ["s2", "s4"]
    result = cli(run, state_dir, "check", run.run_id)
    assert result.returncode == 1 and out(result).splitlines() == ["s2", "s4"] and "2 of 4" in err(result)
    as_json = cli(run, state_dir, "check", run.run_id, "--json")
    assert as_json.returncode == 1
    assert json.loads(out(as_json)) == {"run": run.run_id, "missing": ["s2", "s4"], "with_output": 2}


def test_check_passes_when_every_subject_has_output(client, big, state_dir):
    result = cli(big, state_dir, "check", "--json")  # the latest run
    assert result.returncode == 0, err(result)
    assert json.loads(out(result)) == {"run": big.run_id, "missing": [], "with_output": 50}


def test_collect_json_files_into_one_table(client, endpoint, state_dir, tmp_path):
    run = new_run(
        client,
        endpoint,
        ["s1", "s2", "s3", "s4", "s5"],
        {
            "s1/metrics.json": json.dumps({"dice": 0.9, "volume": 12}).encode(),
            "s2/metrics.json": json.dumps(
                [{"volume": 3, "side": "L"}, {"volume": 4, "side": "R", "ok": True}]
            ).encode(),
            "s4/metrics.json": json.dumps({"dice": None, "extra": {"a": [1]}, "subject": "s4"}).encode(),
            "s5/metrics.json": b"[1, 2",
        },
    )
    from cluster_tools.services.runs.results_collect import collect_table

    table = collect_table(client, *where(run), run.subjects, "metrics.json", jobs=3)
    assert table.columns == ["subject", "dice", "volume", "side", "ok", "extra"]
    assert [r["subject"] for r in table.rows] == ["s1", "s2", "s2", "s4"]
    assert table.missing == ["s3"] and list(table.unreadable) == ["s5"] and table.read == 3

    result = cli(run, state_dir, "collect", run.run_id, "--file", "metrics.json")
    assert result.returncode == 1 and err(result).splitlines()[-1].startswith("Error: 1 subjects' metrics.json")
    assert "1 subjects have no metrics.json: s3" in err(result)
    rows = list(csv.DictReader(io.StringIO(out(result))))
    assert rows[1] == {"subject": "s2", "dice": "", "volume": "3", "side": "L", "ok": "", "extra": ""}
    assert rows[3]["extra"] == '{"a":[1]}' and rows[2]["ok"] == "true"

    target = tmp_path / "all.json"
    as_json = cli(
        run, state_dir, "collect", run.run_id, "--file", "metrics.json", "--format", "json", "-o", str(target)
    )
    assert as_json.returncode == 1  # s3's file is still unreadable
    assert json.loads(target.read_text())[0] == {"subject": "s1", "dice": 0.9, "volume": 12}
    dashed = cli(run, state_dir, "collect", run.run_id, "--file", "metrics.json", "--format", "json", "-o", "-")
    assert json.loads(out(dashed)) == json.loads(target.read_text()) and not (tmp_path / "-").exists()


def test_collect_csv_files_with_differing_columns(client, endpoint, state_dir, tmp_path):
    run = new_run(
        client,
        endpoint,
        ["a1", "a2", "a3"],
        {
            "a1/qc/t.csv": b"x,y\n1,2\n3,4\n",
            "a2/qc/t.csv": b'y,z,"quoted, col"\n5,6,"7, 8"\n',
        },
    )
    target = tmp_path / "out.csv"
    result = cli(run, state_dir, "collect", run.run_id, "--file", "qc/t.csv", "-o", str(target))
    assert result.returncode == 0, err(result)
    assert target.read_text() == ('subject,x,y,z,"quoted, col"\na1,1,2,,\na1,3,4,,\na2,,5,6,"7, 8"\n')
    assert out(result) == "" and "no qc/t.csv: a3" in err(result) and "3 rows from 2 of 3" in err(result)


def test_a_missing_bucket_is_one_error_line(client, endpoint, state_dir):
    run = new_run(client, endpoint, ["s1"], {})
    run = run.model_copy(update={"output": "s3://no-such-bucket-here/out"})
    for command in (
        ["ls", run.run_id],
        ["du", run.run_id],
        ["check", run.run_id],
        ["get", run.run_id],
        ["collect", run.run_id, "--file", "m.json"],
    ):
        result = cli(run, state_dir, *command)
        lines = err(result).strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (command, err(result))
        assert lines[0].startswith("Error: ") and "no-such-bucket-here does not exist" in lines[0]
        assert "hint:" in lines[0] and "Traceback" not in err(result)


def test_an_unknown_run_is_a_user_error(state_dir):
    result = run_cli("results", "ls", "nope-20240101-000000-abcdef", state=state_dir)
    assert result.returncode == 1 and err(result).startswith("Error: no run")
