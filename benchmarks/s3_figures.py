"""4. results in S3: `ls` of many keys and `get` of many files, ours vs the AWS CLI, whole processes."""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.harness import AWS, PYTHON, REPO, Row, clean_env, ms, paired, run_measured, say
from benchmarks.runs import make_project, subject_ids
from benchmarks.s3_worker import ours_available
from benchmarks.slurm_figures import Context

FILES_PER_SUBJECT_LS = 5
FILES_PER_SUBJECT_GET = 10
LS_BODY = b'{"dice": 0.91, "volume_mm3": 1523.5}\n' * 4  # ~150 bytes: a small result file
GET_BODY = bytes(range(256)) * 64  # 16 KiB


def _local_run(ctx: Context, name: str):
    """A run record known locally (never submitted): its S3 prefix is where the objects are seeded."""
    from cluster_tools.model.project.project_config import load_project
    from cluster_tools.model.runs.subjects import SubjectList
    from cluster_tools.services.runs.run_prepare import job_spec, prepare_run
    from cluster_tools.store.run_store import save_run
    from cluster_tools.store.state_dir import StateDir

    project_dir = make_project(ctx.box, name)
    project = load_project(project_dir / "clustertools.yaml")
    state = StateDir(ctx.box.state)
    run, _ = prepare_run(
        state, project, ctx.box.record, SubjectList(ids=subject_ids(3)), job_spec(project, {"command": "true"}), None
    )
    save_run(state, run)
    return run


def _client(endpoint: str):
    from cluster_tools.transport.s3 import S3Target, make_s3_client

    return make_s3_client(S3Target(region="us-east-1", endpoint_url=endpoint, sandbox=True), max_pool_connections=32)


def seed(endpoint: str, bucket: str, keys: list[str], body: bytes) -> float:
    """PUT every key, 32 at a time over pooled connections. Returns the seconds it took."""
    client = _client(endpoint)
    start = time.perf_counter()

    def put(batch: list[str]) -> None:
        for key in batch:
            client.put_object(Bucket=bucket, Key=key, Body=body)

    batches = [keys[i : i + 100] for i in range(0, len(keys), 100)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, batches))
    return time.perf_counter() - start


def _keys(run, subjects: int, files: int) -> list[str]:
    return [f"{run.run_prefix}/{s}/out/file-{k:02d}.json" for s in subject_ids(subjects) for k in range(files)]


def figure_results(ctx: Context) -> None:
    box, sizes = ctx.box, ctx.sizes
    forced = os.environ.get("CLUSTERTOOLS_BENCH_S3_STAND_IN") == "1"  # to check the fallback itself
    stand_in = forced or not ours_available()
    label = " (STAND-IN: plain boto3)" if stand_in else ""
    if stand_in and not forced:
        ctx.report.note(
            "cluster_tools.services.runs.results has no list_results/download_results/client_for_run: the "
            "S3 rows measure a stand-in (boto3 paginator, 32-thread download_file), not clustertools"
        )
    say(f"figure 4: results ls of {sizes.ls_keys} keys and get of {sizes.get_files} files vs the AWS CLI")
    ls_run, get_run = _local_run(ctx, "bench-ls"), _local_run(ctx, "bench-get")
    ls_keys = _keys(ls_run, sizes.ls_keys // FILES_PER_SUBJECT_LS, FILES_PER_SUBJECT_LS)
    get_keys = _keys(get_run, sizes.get_files // FILES_PER_SUBJECT_GET, FILES_PER_SUBJECT_GET)
    took = seed(box.s3_endpoint, box.bucket, ls_keys, LS_BODY) + seed(box.s3_endpoint, box.bucket, get_keys, GET_BODY)
    say(f"  seeded {len(ls_keys) + len(get_keys)} objects in {took:.1f} s")

    env = clean_env(
        box.state,
        AWS_ENDPOINT_URL=box.s3_endpoint,
        AWS_ACCESS_KEY_ID="sandbox",
        AWS_SECRET_ACCESS_KEY="sandbox",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_PAGER="",
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(name, None)
    worker = [str(PYTHON), "-m", "benchmarks.s3_worker", *(["--stand-in"] if stand_in else [])]

    # ls: every key listed and printed, by a whole process each side.
    ours_ls = [*worker, "ls", str(box.state), ls_run.run_id]
    aws_ls = [str(AWS), "s3", "ls", "--recursive", f"s3://{box.bucket}/{ls_run.run_prefix}/"]
    listing = box.work / "ls.txt"
    for argv, what in ((ours_ls, "ours"), (aws_ls, "aws")):
        if run_measured(argv, env=env, cwd=REPO, stdout_path=listing).returncode != 0:
            raise RuntimeError(f"{what} ls failed")
        lines = len(listing.read_text().splitlines())
        if lines != len(ls_keys):
            raise RuntimeError(f"{what} ls printed {lines} lines for {len(ls_keys)} keys")

    def checked(argv, cpu_samples):
        def run():
            measured = run_measured(argv, env=env, cwd=REPO)
            if measured.returncode != 0:
                raise RuntimeError(f"{argv[0]} failed")
            cpu_samples.append(measured.cpu_seconds)

        return run

    reps = min(sizes.reps, 5)  # whole processes of seconds each: 5 keep the run under ten minutes
    cpu: dict[str, list[float]] = {"ours": [], "aws": []}
    ours_s, aws_s = paired(checked(ours_ls, cpu["ours"]), checked(aws_ls, cpu["aws"]), reps)
    ratio = ours_s / aws_s
    ctx.report.add(
        Row(
            f"results ls {len(ls_keys):,} keys{label}",
            ms(ours_s),
            ms(aws_s) + " aws s3 ls",
            f"{ratio:.2f}x",
            "<= 0.85x",
            ratio <= 0.85,
            note=f"whole processes, output discarded; client CPU ours {_cpu(cpu['ours'])} vs aws {_cpu(cpu['aws'])}",
        )
    )

    # get: every file into an empty directory, by a whole process each side.
    downloads = box.work / "downloads"
    counter = itertools.count()

    def fresh() -> Path:
        path = downloads / str(next(counter))
        path.mkdir(parents=True)
        return path

    cpu = {"ours": [], "aws": []}

    def ours_get():
        measured = run_measured([*worker, "get", str(box.state), get_run.run_id, str(fresh())], env=env, cwd=REPO)
        if measured.returncode:
            raise RuntimeError("ours get failed")
        cpu["ours"].append(measured.cpu_seconds)

    def aws_get():
        argv = [str(AWS), "s3", "sync", "--only-show-errors", f"s3://{box.bucket}/{get_run.run_prefix}/", str(fresh())]
        measured = run_measured(argv, env=env, cwd=REPO)
        if measured.returncode:
            raise RuntimeError("aws s3 sync failed")
        cpu["aws"].append(measured.cpu_seconds)

    ours_get()
    aws_get()
    for path in downloads.iterdir():
        files = sum(1 for p in path.rglob("*") if p.is_file())
        if files != len(get_keys):
            raise RuntimeError(f"a download holds {files} files, not {len(get_keys)}")
    cpu = {"ours": [], "aws": []}
    ours_s, aws_s = paired(ours_get, aws_get, reps)
    shutil.rmtree(downloads, ignore_errors=True)
    ratio = ours_s / aws_s
    ctx.report.add(
        Row(
            f"results get {len(get_keys):,} files{label}",
            ms(ours_s),
            ms(aws_s) + " aws s3 sync",
            f"{ratio:.2f}x",
            "<= 0.9x",
            ratio <= 0.9,
            note=f"whole processes into an empty directory, {len(GET_BODY) // 1024} KiB each; "
            f"client CPU ours {_cpu(cpu['ours'])} vs aws {_cpu(cpu['aws'])}",
        )
    )
    start_ours, _ = _floor(
        [str(PYTHON), "-c", "import cluster_tools.services.runs.results, cluster_tools.transport.s3"], env
    )
    start_aws, _ = _floor([str(AWS), "--version"], env)
    ctx.report.note(
        f"process start-up floors: python importing results+s3 {ms(start_ours)}, `aws --version` {ms(start_aws)}"
    )


def _cpu(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s" if samples else "?"


def _floor(argv, env):
    samples = sorted(run_measured(argv, env=env, cwd=REPO).seconds for _ in range(3))
    return samples[1], samples
