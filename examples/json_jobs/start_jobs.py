"""One JSON config per job in S3, one task per config, then every output gathered into one list.

The shape of a launcher researchers write for AWS Batch (a config per job, the config's key passed to the
job, wait, gather every output.json), on a Slurm cluster with clustertools:

    cd examples/json_jobs && python start_jobs.py --jobs 5      # this directory is its project

Each task downloads its config with the node's credentials (the config's key is a column of the run, so an
environment variable of its task), runs worker.py from job.workdir (worker/, beside clustertools.yaml) and
writes output.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from cluster_tools import Project

COMMAND = (
    'aws s3 cp --only-show-errors "s3://$JOB_BUCKET/$CONFIG_KEY" config.json && '
    'python3 worker.py config.json "$OUTPUT_DIR/output.json"'
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="the clustertools.yaml (default: the nearest one)")
    parser.add_argument("--cluster", help="the cluster (default: the project's)")
    parser.add_argument("--jobs", type=int, default=3)
    args = parser.parse_args(argv)

    project = Project.load(args.project)
    cluster = project.cluster(args.cluster)
    s3 = cluster.s3()
    bucket = project.model.storage.output.bucket
    batch = f"{project.name}-{uuid.uuid4().hex[:8]}"
    rows = []
    for index in range(args.jobs):
        key = f"job-configs/{batch}/{index:06d}/config.json"
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"x": index + 2, "y": index + 3}).encode())
        print(f"Created input data: s3://{bucket}/{key}")
        rows.append({"subject": f"job-{index:06d}", "CONFIG_KEY": key, "JOB_BUCKET": bucket})

    run = cluster.submit(rows, command=COMMAND, name=batch, progress=print)
    print(f"Run: {run.id}")
    print("Waiting for jobs to finish.")
    run.wait(
        interval=2,
        on_status=lambda s: print(
            f"Jobs finished: {len(s.subjects) - s.counts['PENDING'] - s.counts['RUNNING']}/{len(s.subjects)}"
        ),
    )
    print("All jobs finished.")
    results = [{k: v for k, v in row.items() if k != "subject"} for row in run.collect("output.json")]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
