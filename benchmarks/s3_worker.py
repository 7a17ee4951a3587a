"""One whole process of "ours" for the S3 figure, to compare with a whole `aws s3 ...` process.

    python -m benchmarks.s3_worker ls STATE_DIR RUN_ID          # prints "size key" per result object
    python -m benchmarks.s3_worker get STATE_DIR RUN_ID DEST    # downloads the run's results into DEST

It does what a `clustertools results ls|get RUN` would do: load the run record, make the run's S3 client
and call cluster_tools.services.runs.results. With ``--stand-in`` (used only when that module is missing) it
uses a plain boto3 paginator and a 32-thread download instead.
"""

from __future__ import annotations

import sys
from pathlib import Path


def ours_available() -> bool:
    try:
        from cluster_tools.services.runs.results import client_for_run, download_results, list_results  # noqa: F401
    except ImportError:
        return False
    return True


def _load_run(state: str, run_id: str):
    from cluster_tools.store.run_store import load_run
    from cluster_tools.store.state_dir import StateDir

    return load_run(StateDir(Path(state)), run_id)


def ours_ls(state: str, run_id: str) -> int:
    from cluster_tools.services.runs.results import client_for_run, list_results

    run = _load_run(state, run_id)
    listing = list_results(client_for_run(run), run.output_location.bucket, run.run_prefix)
    write = sys.stdout.write
    for obj in listing.objects:
        write(f"{obj.size} {obj.key}\n")
    return len(listing.objects)


def ours_get(state: str, run_id: str, dest: str) -> int:
    from cluster_tools.services.runs.results import client_for_run, download_results

    run = _load_run(state, run_id)
    report = download_results(client_for_run(run), run.output_location.bucket, run.run_prefix, Path(dest))
    if not report.ok:
        raise SystemExit(f"download failed: {list(report.failed.items())[:3]} refused {report.refused[:3]}")
    return report.downloaded


def _stand_in_client(run):
    from cluster_tools.transport.s3 import S3Target, make_s3_client

    return make_s3_client(
        S3Target(region=run.region or "us-east-1", endpoint_url=run.s3_endpoint_url, sandbox=run.sandbox_s3),
        max_pool_connections=32,
    )


def stand_in_ls(state: str, run_id: str) -> int:
    run = _load_run(state, run_id)
    client = _stand_in_client(run)
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=run.output_location.bucket, Prefix=f"{run.run_prefix}/"
    ):
        for entry in page.get("Contents", []):
            sys.stdout.write(f"{entry['Size']} {entry['Key']}\n")
            count += 1
    return count


def stand_in_get(state: str, run_id: str, dest: str) -> int:
    from concurrent.futures import ThreadPoolExecutor

    run = _load_run(state, run_id)
    client = _stand_in_client(run)
    bucket, base = run.output_location.bucket, f"{run.run_prefix}/"
    keys = [
        e["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base)
        for e in page.get("Contents", [])
    ]

    def one(key: str) -> None:
        path = Path(dest) / key[len(base) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(path))

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, keys))
    return len(keys)


def main(argv: list[str]) -> int:
    stand_in = "--stand-in" in argv
    args = [a for a in argv if a != "--stand-in"]
    if len(args) < 3 or args[0] not in ("ls", "get"):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "ls":
        count = (stand_in_ls if stand_in else ours_ls)(args[1], args[2])
    else:
        count = (stand_in_get if stand_in else ours_get)(args[1], args[2], args[3])
    print(f"{count} objects", file=sys.stderr)
    if not stand_in:  # the process ends as a clustertools process does (cli/startup.py's freeze_at_exit)
        import gc

        gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
