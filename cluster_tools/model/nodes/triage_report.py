"""Pure: the triage report. The gathered sources (node_triage.py parses them) put together into one typed
``TriageReport``: the node's bootstrap, the fleet, the findings, nodes Slurm holds down, each source's lines
that matter; and the lines a person reads (``summary_lines``, ``detail_lines``).

Every line that leaves this module is redacted, as in node_triage.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cluster_tools.model.nodes.bootstrap_log import TAG, Bootstrap, parse_bootstrap, redact, shown
from cluster_tools.model.nodes.node_triage import (
    LogLine,
    NodeDown,
    SourceText,
    findings_of,
    parse_sinfo_reasons,
    protected_in_logs,
    relevant_lines,
)


@dataclass(frozen=True)
class SourceReport:
    name: str
    where: str
    node: str
    status: str
    lines: tuple[LogLine, ...] = ()
    omitted: int = 0  # lines that mattered but were not kept (--lines)
    detail: str = ""  # why there is no text (status "error")


@dataclass(frozen=True)
class TriageReport:
    cluster: str
    kind: str  # "sandbox", "ssh", "parallelcluster"
    node: str | None
    node_why: str
    bootstrap: Bootstrap
    fleet: str | None = None  # ParallelCluster's compute fleet status (RUNNING, PROTECTED, ...)
    cluster_status: str | None = None
    protected: bool = False
    findings: tuple[str, ...] = ()
    down_nodes: tuple[NodeDown, ...] = ()
    sources: tuple[SourceReport, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bootstrap"]["nothing_to_do"] = self.bootstrap.nothing_to_do
        return data


def build_report(
    cluster: str,
    kind: str,
    sources: Iterable[SourceText],
    *,
    node: str | None,
    node_why: str,
    bootstrap_from: Sequence[str],
    node_names: Sequence[str] = (),
    fleet: str | None = None,
    cluster_status: str | None = None,
    failures: Sequence[str] = (),
    notes: Sequence[str] = (),
    lines: int = 15,
) -> TriageReport:
    """Put the gathered sources together. ``bootstrap_from`` names the sources that tell the node's own
    bootstrap (first one with a run wins); ``lines`` bounds the lines kept per source."""
    sources = list(sources)
    by_name = {s.name: s for s in sources if s.status == "ok"}
    outcome = _node_bootstrap(by_name, bootstrap_from, lines)
    texts = {name: s.text for name, s in by_name.items()}
    findings = [*(redact(f) for f in failures), *findings_of(texts)]
    protected = fleet == "PROTECTED" or (
        fleet is None and kind == "parallelcluster" and protected_in_logs(texts.get("clustermgtd", "")) is not None
    )
    reports = [_source_report(source, node_names, lines) for source in sources]
    down = tuple(parse_sinfo_reasons(texts.get("sinfo", "")))
    return TriageReport(
        cluster=cluster,
        kind=kind,
        node=node,
        node_why=node_why,
        bootstrap=outcome,
        fleet=fleet,
        cluster_status=cluster_status,
        protected=protected,
        findings=tuple(findings),
        down_nodes=down,
        sources=tuple(reports),
        notes=tuple(redact(n) for n in notes),
    )


def _node_bootstrap(by_name: Mapping[str, SourceText], bootstrap_from: Sequence[str], lines: int) -> Bootstrap:
    """The node's bootstrap as the first of ``bootstrap_from`` with a run of it tells it."""
    for name in bootstrap_from:
        if name in by_name:
            candidate = parse_bootstrap(by_name[name].text, name, keep=lines)
            if candidate.state != "never-ran":
                return candidate
    return Bootstrap(state="never-ran")


def _source_report(source: SourceText, node_names: Sequence[str], lines: int) -> SourceReport:
    """One source's last ``lines`` relevant lines (and how many more), or why it could not be read."""
    kept: list[LogLine] = []
    if source.status == "ok":
        kept = relevant_lines(source.name, source.text, node_names=node_names)
    detail = "" if source.status == "ok" else " ".join(shown(source.text).split())
    return SourceReport(
        source.name,
        redact(source.where),
        source.node,
        source.status,
        tuple(kept[-lines:]),
        max(0, len(kept) - lines),
        detail,
    )


def bootstrap_headline(report: TriageReport) -> str:
    """``node X: bootstrap FAILED at step miniforge (exit 1) at 2024-05-01T12:00:03Z``"""
    b, who = report.bootstrap, f"node {report.node}" if report.node else "head node"
    if b.state == "failed":
        where = f"at step {b.failed_step}" if b.failed_step else "before any step"
        code = f" (exit {b.exit_code})" if b.exit_code is not None else ""
        when = f" at {b.ended_at}" if b.ended_at else ""
        return f"{who}: bootstrap FAILED {where}{code}{when}" + (f": {b.error}" if b.error else "")
    if b.state == "ok":
        what = (
            "nothing to do, every step already done"
            if b.nothing_to_do
            else f"ran {', '.join(b.steps_run)}"
            if b.steps_run
            else "no step needed"
        )
        return f"{who}: bootstrap OK{' at ' + b.ended_at if b.ended_at else ''} ({what})"
    if b.state == "running":
        step = f" in step {b.current_step}" if b.current_step else ""
        return (
            f"{who}: bootstrap has no end line yet{step} (started {b.started_at or '?'}): "
            "still running, or the node stopped while it ran"
        )
    return f"{who}: bootstrap never ran (no {TAG} lines in the logs read)"


def summary_lines(report: TriageReport) -> list[str]:
    """What a person reads first: the node's bootstrap, the fleet, the findings, nodes Slurm holds down."""
    out = [
        f"cluster {report.cluster} ({report.kind}): node {report.node or 'head node'} ({report.node_why})",
        bootstrap_headline(report),
    ]
    if report.bootstrap.state == "failed" and report.bootstrap.output:
        out += [f"  | {line}" for line in report.bootstrap.output]
    if report.kind == "parallelcluster":
        fleet = report.fleet or "unknown"
        out.append(
            f"fleet: {fleet}"
            + (f" (cluster {report.cluster_status})" if report.cluster_status else "")
            + (
                " -- PROTECTED: ParallelCluster stopped launching nodes after repeated bootstrap failures; "
                "fix the cause, then restart the fleet (pcluster update-compute-fleet --status START_REQUESTED)"
                if report.protected
                else ""
            )
        )
    else:
        out.append(f"fleet: not a ParallelCluster cluster ({report.kind}): no protected mode")
    out += [f"finding: {f}" for f in report.findings]
    out += [f"down: {d.node} {d.state} since {d.since}: {d.reason}" for d in report.down_nodes]
    out += [f"note: {n}" for n in report.notes]
    return out


def detail_lines(report: TriageReport) -> list[str]:
    """The lines that matter, per source."""
    out = []
    for source in report.sources:
        head = f"== {source.name} ({source.node}: {source.where})"
        if source.status != "ok":
            out.append(f"{head}: {source.status}" + (f": {source.detail}" if source.detail else ""))
            continue
        out.append(f"{head}" + (f", {source.omitted} earlier line(s) not shown" if source.omitted else ""))
        if not source.lines:
            out.append("   (nothing that matters)")
        for line in source.lines:
            count = f" (x{line.repeats})" if line.repeats > 1 else ""
            out.append(f"   {line.time + ' ' if line.time else ''}{line.text}{count}")
    return out
