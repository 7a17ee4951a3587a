"""The cost estimate beside the same run replayed on the sandbox (issue 7): N subjects really run by
Slurm, throttled to 16 at a time as one 16-vCPU spot node (c6i.4xlarge, MaxCount 1) packs them, their
records stretched so a subject takes 8 minutes, and costed; the estimate of that run must be within
20%. It runs FIRST: the other figures set the partition down."""

from __future__ import annotations

import json
import time

from benchmarks.harness import Row, say
from benchmarks.runs import make_project, subject_ids

MINUTES = 8.0


def figure_cost(ctx) -> None:
    from cluster_tools.model.cost.cost_model import NodeShape, Prices, TaskShape, TaskSpan, check_against_replay
    from cluster_tools.model.cost.pricing import instance_price, load_price_table

    box, count = ctx.box, ctx.sizes.cost_subjects
    say(f"figure cost: estimate vs the replayed run of {count} subjects x {MINUTES:g} min on a 16-vCPU spot node")
    project = make_project(box, "bench-cost")
    config = project / "clustertools.yaml"
    text = config.read_text().replace("instance_types: [c6i.xlarge, c5.xlarge]", "instance_types: [c6i.4xlarge]")
    config.write_text(text.replace("max_count: 10 ", "max_count: 1 "))
    (project / "subjects.txt").write_text("".join(f"{s}\n" for s in subject_ids(count)))
    sent = box.cli("submit", "subjects.txt", "--command", "sleep 1", "--throttle", "16", "--json", cwd=project)
    if sent.returncode != 0:
        raise RuntimeError(f"submit failed: {sent.stderr.strip()}")
    run_id = json.loads(sent.stdout)["run"]
    started, done = time.perf_counter(), None
    while time.perf_counter() - started < 3600:
        current = json.loads(box.cli("status", run_id, "--json", cwd=project).stdout)
        if current["counts"]["PENDING"] == 0 and current["counts"]["RUNNING"] == 0:
            done = current
            break
        time.sleep(5)
    if done is None:
        raise RuntimeError(f"the run did not finish within an hour: {current['counts']}")
    say(f"  {count} subjects ran in {time.perf_counter() - started:.0f} s")
    spans = [
        t for t in (TaskSpan.of_record(s["subject"], s["node"], s["start"], s["end"]) for s in done["subjects"]) if t
    ]
    table = load_price_table()
    prices = Prices(
        instance_price(table, "us-east-1", "c6i.4xlarge").hourly_usd,
        instance_price(table, "us-east-1", "c6i.4xlarge", "spot").hourly_usd,
        instance_price(table, "us-east-1", "t3.medium").hourly_usd,
        table.label,
    )
    check = check_against_replay(
        spans,
        MINUTES,
        NodeShape("c6i.4xlarge", 16, 32, max_nodes=1, capacity="spot"),
        TaskShape(cpus=1, mem_gib=None, minutes=MINUTES, throttle=16),
        prices,
    )
    ctx.report.add(
        Row(
            f"cost estimate vs replayed run ({count} x {MINUTES:g} min, c6i.4xlarge spot, head incl.)",
            f"${check.estimate.total:.2f}",
            f"${check.replayed.total:.2f}",
            f"{check.ratio:.2f}x",
            "0.8-1.2x",
            0.8 <= check.ratio <= 1.2,
            note=f"a subject took {check.mean_seconds:.1f} s here, stretched x{check.factor:.0f}",
        )
    )
