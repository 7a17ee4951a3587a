"""A per-subject input location: a column ``input_url`` of the subjects CSV names where that subject's input
is (``s3://bucket/prefix/`` for everything under it, or one object), instead of ``<storage.input>/<subject>/``.

Each URL is checked when the run is submitted, as hostile as any value from outside: an S3 location by the
project's own rule, and, on a ParallelCluster cluster, in a bucket its nodes are given read access to.
"""

from __future__ import annotations

from cluster_tools.errors import ConfigError
from cluster_tools.model.project.project_config import Project
from cluster_tools.model.runs.job_spec import S3Location
from cluster_tools.model.runs.subjects import SubjectList

INPUT_URL_COLUMN = "input_url"


def readable_buckets(project: Project) -> set[str] | None:
    """The buckets a rendered cluster lets its nodes read; None when the project renders no cluster."""
    if project.parallelcluster is None:
        return None
    buckets = {project.storage.output.bucket, *project.parallelcluster.input_buckets}
    if project.storage.input is not None:
        buckets.add(project.storage.input.bucket)
    return buckets


def check_input_urls(project: Project, subjects: SubjectList) -> None:
    readable = readable_buckets(project)
    for url in project.storage.shared_inputs:
        bucket = S3Location.parse(url).bucket
        if readable is not None and bucket not in readable:
            raise ConfigError(
                f"storage.shared_inputs: {url} is in bucket {bucket}, which the cluster's nodes are not "
                "given read access to",
                "add it to parallelcluster.input_buckets",
            )
    if INPUT_URL_COLUMN not in subjects.columns:
        return
    index = list(subjects.columns).index(INPUT_URL_COLUMN)
    for subject, row in zip(subjects.ids, subjects.rows, strict=True):
        url = row[index]
        try:
            where = S3Location.parse(url)
        except ValueError as exc:
            raise ConfigError(
                f"subject {subject}: {INPUT_URL_COLUMN} {url!r}: {exc}",
                "an s3:// URL: a prefix ending in / (all under it) or one object",
            ) from None
        if readable is not None and where.bucket not in readable:
            raise ConfigError(
                f"subject {subject}: {INPUT_URL_COLUMN} is in bucket {where.bucket}, which the cluster's "
                "nodes are not given read access to",
                "add it to parallelcluster.input_buckets",
            )
