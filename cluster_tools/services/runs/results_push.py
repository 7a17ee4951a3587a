"""`clustertools results push`: finish the uploads that failed, from the head node, without computing again.

A task whose upload still failed after its retries moved its staged outputs (the run's S3 layout: outputs
under ``<subject>/``, its record and logs under ``.clustertools/``) to ``<run dir>/unsent/<subject>.<attempt>/``
on the head node, and recorded FAILED with ``kept`` set. Pushing uploads that folder with the head node's
aws CLI, then writes the record the task staged (the command's own outcome, usually SUCCEEDED) as a new
record, which wins over the FAILED one, and removes the folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster_tools.errors import ConfigError
from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.model.runs.run_status import RunStatus, SubjectStatus
from cluster_tools.model.runs.subjects import ID_RE
from cluster_tools.services.runs import run_follow as run_service
from cluster_tools.store.state_dir import StateDir
from cluster_tools.transport.remote_shell import ShellFactory

_MARK = "@@clustertools-push"
# $1 run dir, $2 the run's S3 URL, then NAMES (<subject>.<attempt>). One line per name: ok, gone or failed.
_PUSH_SCRIPT = r"""
set -u
root=$1 url=$2
shift 2
for name in "$@"; do
  dir="$root/unsent/$name" staged="$root/unsent/$name/.clustertools/records/$name.json"
  if [[ ! -f $staged ]]; then echo "MARK $name gone"; continue; fi
  if ! err=$(aws s3 cp --only-show-errors --recursive "$dir/" "$url/" 2>&1); then
    echo "MARK $name failed ${err//$'\n'/ }"; continue
  fi
  tmp="$root/records/new/.$name.pushed.$$.tmp"
  if cp "$staged" "$tmp" && mv -f "$tmp" "$root/records/new/$name.pushed.json"; then
    rm -rf -- "$dir"; echo "MARK $name ok"
  else
    echo "MARK $name failed: cannot write its record in $root/records/new"
  fi
done
""".replace("MARK", _MARK)


@dataclass(frozen=True)
class PushResult:
    run_id: str
    pushed: tuple[SubjectStatus, ...]  # their status after the push (the command's own outcome)
    failed: dict[str, str]  # subject -> why

    def to_json(self) -> dict[str, object]:
        return {"run": self.run_id, "pushed": [s.to_json() for s in self.pushed], "failed": self.failed}


def kept_subjects(status: RunStatus) -> list[SubjectStatus]:
    """Subjects whose latest attempt computed but could not upload, and keep their outputs on the head node."""
    return [s for s in status.subjects if s.kept and s.state == "FAILED"]


def push_kept_outputs(
    state: StateDir, run: RunRecord, cluster: ClusterRecord, connect: ShellFactory, subjects: tuple[str, ...] = ()
) -> PushResult:
    """Upload every kept output of ``run`` (or of ``subjects``) over one SSH connection."""
    with connect(cluster) as conn:
        status = run_service.read_status(conn, run)  # also folds the FAILED records before ours are written
        todo = [s for s in kept_subjects(status) if not subjects or s.subject in subjects]
        if not todo:
            raise ConfigError(
                f"run {run.run_id} has no outputs kept on the head node"
                + (f" for {', '.join(subjects[:5])}" if subjects else ""),
                "`clustertools status` shows why subjects failed; `resubmit --failed` reruns them",
            )
        # The folder's name is built here from the run's own subjects, never taken from a record's text.
        names = {f"{s.subject}.{s.attempt}": s.subject for s in todo if ID_RE.fullmatch(s.subject)}
        url = f"s3://{run.output_location.bucket}/{run.run_prefix}"
        result = conn.run(["bash", "-c", _PUSH_SCRIPT, "ct-push", run.remote_dir, url, *names], timeout=3600)
        outcome = _parse(result.text, names)
        after = run_service.read_status(conn, run)
    run_service.remember_counts(state, run, after)
    by_subject = {s.subject: s for s in after.subjects}
    pushed = tuple(by_subject[subject] for subject, why in outcome.items() if why is None)
    failed = {subject: why for subject, why in outcome.items() if why is not None}
    return PushResult(run.run_id, pushed, failed)


def _parse(text: str, names: dict[str, str]) -> dict[str, str | None]:
    """subject -> None when pushed, else why not."""
    outcome: dict[str, str | None] = {subject: "the head node did not answer for it" for subject in names.values()}
    for line in text.splitlines():
        if not line.startswith(_MARK + " "):
            continue
        name, _, rest = line[len(_MARK) + 1 :].partition(" ")
        if name not in names:
            continue
        word, _, detail = rest.partition(" ")
        outcome[names[name]] = (
            None
            if word == "ok"
            else (
                "its kept outputs are gone from the head node" if word == "gone" else f"upload failed: {detail.strip()}"
            )
        )
    return outcome
