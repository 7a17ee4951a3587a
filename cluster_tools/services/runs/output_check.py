"""Before a run is submitted: can the tasks write to its output location at all?

A missing or read-only output bucket used to be found only after every task had computed (issue 11,
item 7). The check runs where the tasks' identity is: on the head node, over the submit's own SSH
connection, with the node's aws CLI and environment (its role on ParallelCluster; the sandbox's S3
endpoint, which the node's environment carries to every task too). It puts one empty probe object under
the run's ``.clustertools/`` prefix (never a result) and deletes it again.
"""

from __future__ import annotations

import secrets

from cluster_tools.errors import ClusterToolsError
from cluster_tools.model.runs.run_record import META_PREFIX, RunRecord
from cluster_tools.transport.remote_shell import RemoteShell

# $1: the probe's URL. The delete is best effort: a role may write without deleting, and a probe left
# under .clustertools/ is no result. So it runs detached (setsid, its output to /dev/null: the SSH channel
# closes without waiting for it), and the submit does not wait for a second aws CLI start (~0.3 s).
# 127: no aws CLI (the tasks would fail the same way).
_PROBE_SCRIPT = (
    "command -v aws >/dev/null 2>&1 || exit 127; "
    'aws s3 cp --only-show-errors - "$1" </dev/null || exit 1; '
    'setsid aws s3 rm --quiet "$1" </dev/null >/dev/null 2>&1 &'
)


def output_probe_url(run: RunRecord, token: str) -> str:
    return f"s3://{run.output_location.bucket}/{run.run_prefix}/{META_PREFIX}/probe-{token}"


def check_output_location(conn: RemoteShell, run: RunRecord, *, timeout: float = 120) -> None:
    """Raise a ``ClusterToolsError`` (nothing submitted) unless the head node can write the run's outputs."""
    where = f"s3://{run.output_location.bucket}/{run.run_prefix}/"
    result = conn.run(
        ["bash", "-c", _PROBE_SCRIPT, "ct-probe", output_probe_url(run, secrets.token_hex(6))], timeout=timeout
    )
    if result.exit_code == 0:
        return
    if result.exit_code == 127:
        raise ClusterToolsError(
            f"the aws CLI is not on the head node of {run.cluster}: the tasks could not "
            f"upload their outputs to {where}; nothing was submitted",
            "install the AWS CLI on the cluster's nodes (it is on ParallelCluster's AMIs)",
        )
    lines = (result.stderr.decode(errors="replace") + result.text).strip().splitlines()
    why = lines[-1].strip() if lines else f"exit code {result.exit_code}"
    raise ClusterToolsError(
        f"the output location {where} is not writable from the head node: {why}; nothing was submitted",
        "create the bucket (or fix storage.output in clustertools.yaml) and let the cluster's role write to it, "
        "then submit again",
    )
