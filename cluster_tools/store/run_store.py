"""Runs kept in the state dir: one private JSON file per run, read back as a RunRecord, listed, resolved by id.

The record itself (its attempts, chunks and states) is pure: cluster_tools/model/runs/run_record.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from cluster_tools.errors import ConfigError
from cluster_tools.model.runs.run_record import RunRecord
from cluster_tools.store.state_dir import StateDir, write_private_json


def _run_file(state: StateDir, run_id: str) -> Path:
    return state.run_file(run_id)


def save_run(state: StateDir, run: RunRecord) -> None:
    write_private_json(_run_file(state, run.run_id), run.model_dump(mode="json"))


def load_run(state: StateDir, run_id: str) -> RunRecord:
    path = _run_file(state, run_id)  # checks the id: a name, never a path
    try:
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no run {run_id!r} is known here", "`clustertools runs` lists them") from None
    except ValidationError as exc:
        raise ConfigError(f"the record of run {run_id} is damaged: {exc.errors()[0]['msg']}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"the record of run {run_id} ({path}) cannot be read: {_why(exc)}") from None


def list_runs(
    state: StateDir, project: str | None = None, *, warn: Callable[[str], None] = lambda _: None
) -> list[RunRecord]:
    """Known runs, oldest first; only the project's when ``project`` is given.

    A damaged record is skipped, and ``warn`` is told which file it is: one bad file hides no other run.
    """
    directory = state.runs
    runs = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        try:
            run = RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # ValidationError and UnicodeDecodeError are ValueErrors
            warn(f"warning: skipping the damaged run record {path}: {_why(exc)}")
            continue
        if project is None or run.project == project:
            runs.append(run)
    return sorted(runs, key=lambda r: (r.created_at, r.run_id))


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return exc.errors()[0]["msg"]
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
    return getattr(exc, "strerror", None) or str(exc)


def resolve_run(
    state: StateDir, run_id: str | None, project: str | None, *, warn: Callable[[str], None] = lambda _: None
) -> RunRecord:
    """RUN if given (its whole id, or any prefix of it that names one run alone), else the project's latest
    run (or the latest run at all outside a project).

    Choosing the latest, a damaged record is skipped and ``warn`` names it: the latest may be that one.
    """
    if run_id:
        _run_file(state, run_id)  # checks the id: a name, never a path
        if state.run_file(run_id).exists():
            return load_run(state, run_id)
        found = (
            sorted(path.stem for path in state.runs.glob("*.json") if path.stem.startswith(run_id))
            if state.runs.is_dir()
            else []
        )
        if len(found) == 1:
            return load_run(state, found[0])
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            raise ConfigError(f"{run_id!r} is the start of {len(found)} runs: {shown}", "give more of the run id")
        return load_run(state, run_id)  # not found: its own error
    runs = list_runs(state, project, warn=warn)
    if not runs:
        raise ConfigError(
            "no run yet" + (f" in project {project}" if project else ""), "submit one: clustertools submit subjects.txt"
        )
    return runs[-1]
