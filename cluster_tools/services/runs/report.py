"""A run's report: the status `status` reads (head node, else the records in S3), plus the records of
earlier attempts, folded by the pure ``run_report.build_report``."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.cost.pricing import PriceNotFound
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.model.runs.run_report import ReportCosts, RunReport, build_report
from cluster_tools.model.runs.run_status import RunStatus, TaskRecord
from cluster_tools.model.runs.status_reply import parse_records
from cluster_tools.services.runs.run_follow import records_cache, status_once
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

_RECORD_KEY = re.compile(r"/([^/]+)\.(\d+)\.json\Z")  # <records prefix><subject>.<attempt>.json


# A sandbox run of a project with no parallelcluster: section: nothing to price it as.
SANDBOX_COST = (
    "none (the sandbox runs on this machine); with a parallelcluster: section in the project, the report "
    "prices the run as its cluster would bill on AWS"
)


def run_report(
    state: StateDir,
    run: RunRecord,
    cluster: ClusterRecord | None,
    connect: ShellFactory,
    *,
    costs_from_status: Callable[[RunStatus], ReportCosts | None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    note: Callable[[str], None] = lambda _: None,
) -> RunReport:
    """The report of ``run`` as of now, from one status read exactly as `clustertools status` does it
    (one SSH round trip; the records in S3 when the head node is gone or lost the run's files).

    ``costs_from_status``: the cost hook. Given the status just read, it returns the run's RunCost
    (``services.cost.run_costs``: the computation ``cost RUN`` uses, so both show one figure), or USD per
    subject (a mapping, or a callable ``subject -> USD | None``), or None when the cluster cannot be priced.
    Without it (or when it returns None) the report says "cost: not available for this cluster"; when it
    raises PriceNotFound (no price in the table nor from AWS), "cost unknown" and why.
    """
    cache = records_cache(state, run)  # every record read, of every attempt, while the status has each subject's latest
    status = status_once(state, run, cluster, connect, note=note, cache=cache)
    as_of = now()
    if status.source == "s3":
        records = earlier_records_from_s3(run) if len(run.attempts) > 1 else []
    else:
        records = list(cache.records)
    costs, unknown = None, None
    try:
        costs = costs_from_status(status) if costs_from_status else None
    except PriceNotFound as exc:  # the report is still worth reading without a price
        unknown = exc.message
    return build_report(
        status,
        records,
        as_of=as_of,
        costs=costs,
        cost_unknown=unknown,
        cost_note=SANDBOX_COST if costs is None and unknown is None and run.sandbox_s3 else None,
        asked=lambda n: (run.job_of(n).mem, run.job_of(n).cpus),
    )


def earlier_records_from_s3(run: RunRecord) -> list[TaskRecord]:
    """The final records tasks of earlier attempts copied to S3 (``<subject>.<attempt>.json`` below the
    run's records prefix); the latest attempt's are already in the status."""
    from cluster_tools.services.runs.results import client_for_run
    from cluster_tools.transport.s3 import iter_object_pages, read_object

    latest = run.current_attempt_of()
    client = client_for_run(run)
    bucket = run.output_location.bucket
    keys = []
    for page in iter_object_pages(client, bucket, run.records_prefix):
        for entry in page:
            match = _RECORD_KEY.search(entry["Key"])
            if match and int(match[2]) < latest.get(match[1], 0):
                keys.append(entry["Key"])
    with ThreadPoolExecutor(max_workers=32) as pool:
        bodies = pool.map(lambda key: read_object(client, bucket, key) or b"", keys)
        text = "\n".join(body.decode("utf-8", "replace").strip() for body in bodies)
    return parse_records(text)
