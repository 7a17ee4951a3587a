"""The files a run puts on the head node, rendered from its record: pure text, every value quoted.

array.sbatch (Slurm directives, then the wrapper), wrapper.sh (one subject per task), submit.sh
(idempotent submission of an attempt's arrays), status.sh (one read of records + queue), and per
attempt: the manifest (task -> subject and its variables) and the chunk list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources

from cluster_tools import __version__
from cluster_tools.model.cost.cost_model import slurm_minutes
from cluster_tools.model.runs.job_spec import JobSpec
from cluster_tools.model.runs.run_record import Attempt, RunRecord
from cluster_tools.render.templates import render_template
from cluster_tools.slurm.limits import ChunkPlan
from cluster_tools.slurm.queue import SQUEUE_FORMAT, comment_prefix, job_name

FIELD_SEPARATOR = "\x1f"  # the manifest's: never in a subject ID or a value (refused when parsing)


def _values(run: RunRecord, job: JobSpec | None = None) -> dict[str, object]:
    """The template values of ``run``; its resources are ``job``'s when given (a resubmitted attempt's)."""
    job = job or run.job
    output = run.output_location
    run_url = f"s3://{output.bucket}/{run.run_prefix}"
    return {
        "run_id": run.run_id,
        "job_name": job_name(run.run_id),
        "squeue_format": SQUEUE_FORMAT,
        "comment_prefix": comment_prefix(run.run_id),
        "command": run.job.command or "",
        "container": run.job.container or "",
        "container_args": run.job.container_args,
        "workdir": bool(run.job.workdir),
        "version": __version__,
        "spec_hash": run.spec_hash,
        "subjects_sha256": _subjects_sha256(run),
        "workdir_sha256": run.workdir_sha256 or "",
        "container_args_json": json.dumps(run.job.container_args),
        "input_url": (run.input or "").rstrip("/"),
        "input_secret": run.input_credentials or "",
        "input_secret_to_task": run.input_credentials_to_task,
        "shared_inputs": run.shared_inputs,
        # aws s3 cp's filters, in order (later ones win): with includes, everything else is excluded first.
        "input_filters": (
            [
                *(["--exclude", "*"] if run.input_include else []),
                *[w for p in run.input_include for w in ("--include", p)],
                *[w for p in run.input_exclude for w in ("--exclude", p)],
            ]
        ),
        "output_url": run_url,
        "cpus": job.cpus,
        "gpus": job.gpus,
        "mem": job.mem,
        "time": job.time,
        "time_s": _seconds(job.time),
        "partition": job.partition or "",
        "shared_dirs": run.shared_dirs,
    }


def render_array_script(run: RunRecord, job: JobSpec | None = None) -> str:
    """array.sbatch: the run's resources, or a resubmitted attempt's (``job``: attempts/N/array.sbatch)."""
    return render_template("run/array.sbatch.j2", **_values(run, job))


def render_attempt_resources(job: JobSpec) -> str:
    """attempts/N/resources: what the wrapper of a resubmitted attempt was given (its OOM note, GPUs, time limit)."""
    return f"mem={job.mem}\ngpus={job.gpus}\ntime_s={_seconds(job.time)}\ntime={job.time}\n"


def _seconds(slurm_time: str) -> int:
    """A Slurm time in seconds; 0 for one that is not a time (the template refuses it as a directive anyway)."""
    try:
        return round(slurm_minutes(slurm_time) * 60)
    except ValueError:
        return 0


def render_wrapper(run: RunRecord) -> str:
    return render_template("run/wrapper.sh.j2", **_values(run))


def render_submit_script(
    run: RunRecord, *, sbatch_timeout: int = 120, resolve_tries: int = 5, resolve_wait: int = 3
) -> str:
    """submit.sh: an sbatch without an answer in ``sbatch_timeout`` s is looked for again in the queue
    ``resolve_tries`` times, ``resolve_wait`` s apart, before the chunk is reported unknown."""
    throttle = f"%{run.job.throttle}" if run.job.throttle else ""
    return render_template(
        "run/submit.sh.j2",
        **_values(run),
        throttle_suffix=throttle,
        sbatch_timeout=sbatch_timeout,
        resolve_tries=resolve_tries,
        resolve_wait=resolve_wait,
    )


def render_status_script(run: RunRecord) -> str:
    return render_template("run/status.sh.j2", **_values(run))


def cancel_script() -> str:
    """cancel_run.py: a whole run cancelled on the head node (sent on stdin; nothing in it is the run's own)."""
    return (resources.files("cluster_tools") / "templates" / "run" / "cancel_run.py").read_text(encoding="utf-8")


def render_dataset_description(run: RunRecord) -> str:
    """dataset_description.json at the root of the run's outputs (BIDS's name for a derivative dataset's summary):
    what made every subject's outputs, so the run can be cited and run again. Each task's provenance.json
    says the rest (its attempt, resources used, node, image digest)."""
    job = run.job
    return (
        json.dumps(
            {
                "Name": run.run_id,
                "DatasetType": "derivative",
                "GeneratedBy": [
                    {
                        "Name": "clustertools",
                        "Version": __version__,
                        **({"Container": {"Type": "oci", "Tag": job.container}} if job.container else {}),
                    }
                ],
                "clustertools": {
                    "run": run.run_id,
                    "project": run.project,
                    "cluster": run.cluster,
                    "created_at": run.created_at,
                    "command": job.command,
                    "container": job.container,
                    "container_args": job.container_args,
                    "job": job.model_dump(),
                    "input": run.input,
                    "output": run.output,
                    "columns": run.columns,
                    "subjects": len(run.subjects),
                    "subjects_sha256": _subjects_sha256(run),
                    "spec_sha256": run.spec_hash,
                    "workdir_sha256": run.workdir_sha256,
                },
            },
            indent=2,
        )
        + "\n"
    )


def _subjects_sha256(run: RunRecord) -> str:
    return hashlib.sha256("\n".join(run.subjects).encode()).hexdigest()


def render_manifest(columns: Sequence[str], attempt: Attempt) -> str:
    """Header ``SUBJECT<US>col...``, then one line per task in task order."""
    lines = [FIELD_SEPARATOR.join(["SUBJECT", *columns])]
    for i, subject in enumerate(attempt.subjects):
        values = attempt.rows[i] if attempt.rows else []
        lines.append(FIELD_SEPARATOR.join([subject, *values]))
    return "\n".join(lines) + "\n"


def render_chunk_list(chunks: Sequence[ChunkPlan]) -> str:
    """What submit.sh reads: ``CHUNK OFFSET COUNT`` per line."""
    return "".join(f"{c.index} {c.offset} {c.count}\n" for c in chunks)
