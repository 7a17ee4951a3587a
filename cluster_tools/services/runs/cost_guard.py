"""The cost guard of a submit: what it would cost on AWS, and whether someone must say yes first.

Part of the submit itself (the CLI and the Python API share it), so a script that submits through the
API meets the same threshold (``cost.confirm_above_usd``) as a person at the terminal: above it, or with
a cost nobody could find, nothing is sent unless ``yes`` or ``approve(question)`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cluster_tools.errors import ClusterToolsError


@dataclass(frozen=True)
class CostCheck:
    lines: tuple[str, ...] = ()  # what to tell the user: the estimate, or "cost unknown" and why
    question: str | None = None  # why a yes is needed before anything is sent; None: no need
    hint: str = ""


def check_cost(project, job, subjects: int, cluster, minutes: float | None, environ: Mapping[str, str]) -> CostCheck:
    """On a ParallelCluster cluster: the run's estimate and whether it needs a yes; elsewhere nothing."""
    from cluster_tools.model.cost.pricing import format_usd
    from cluster_tools.services.aws.price_lookup import aws_for
    from cluster_tools.services.runs.run_cost import CostUnknown, needs_confirmation, submit_estimate

    estimate = submit_estimate(project, job, subjects, cluster.provider, minutes, aws=aws_for(environ))
    if estimate is None:
        return CostCheck()
    threshold = project.cost.confirm_above_usd
    lines: tuple[str, ...]
    if isinstance(estimate, CostUnknown):
        lines = (f"cost unknown: {estimate.reason}",)
        why = f"the cost is unknown, so it cannot be shown to be under cost.confirm_above_usd ({format_usd(threshold)})"
        hint = "pass --yes to submit anyway (the note above says why no price was found)"
    else:
        run = estimate.run
        approx = "~" if run.capacity == "spot" and estimate.priced.prices.spot_is_estimate else ""
        hours, mins = divmod(round(run.wall_minutes), 60)
        lines = (
            (f"note: {estimate.asked_aws}: priced with AWS's figures ({estimate.priced.prices.source})",)
            if estimate.asked_aws
            else ()
        ) + (
            f"estimate: {approx}{format_usd(run.total)} for {subjects} subjects ({run.capacity}, head node included), "
            f"~{hours} h {mins:02d} min on up to {run.nodes} {estimate.priced.node.instance_type}; minutes per subject "
            f"from {estimate.minutes_from}; details: clustertools cost estimate",
        )
        why = f"the estimate {format_usd(run.total)} is above cost.confirm_above_usd ({format_usd(threshold)})"
        hint = "pass --yes to submit anyway, or raise cost.confirm_above_usd in clustertools.yaml"
    return CostCheck(lines, why if needs_confirmation(estimate, threshold) else None, hint)


def enforce(check: CostCheck, *, yes: bool, approve: Callable[[str], bool] | None) -> None:
    """Go on, or raise: nothing is sent above the threshold without ``yes`` or ``approve(question)``."""
    if check.question is None or yes or (approve is not None and approve(check.question)):
        return
    raise ClusterToolsError(f"{check.question}: nothing was submitted", check.hint)
