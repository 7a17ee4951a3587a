"""The cost estimate against a run that really happened: subjects run in the sandbox's real Slurm, at
compressed time, and costed from their durable records.

The queue priced is one 16-vCPU spot node (c6i.4xlarge, MaxCount 1: a sandbox of one static 16-CPU node), the job
takes 1 CPU and runs throttled to 16 at a time, so Slurm packs it as that node would. Time is compressed:
each subject takes seconds here (mostly the wrapper's own work: staging, the aws CLI's upload of its
record and logs); the run's records are stretched so the mean subject takes 8 minutes, which is what the
estimate is told. What is compared is everything else the model assumes: waves, packing, Slurm's gaps
between tasks, stragglers, the head node's hours. The 1,000-subject version of this is
`dev/benchmark --only cost` (about 10 minutes here); the suite runs a smaller run of the same shape.
"""

from __future__ import annotations

import pytest

from cluster_tools.model.cost.cost_model import NodeShape, Prices, TaskShape, TaskSpan, check_against_replay
from cluster_tools.model.cost.pricing import instance_price, load_price_table
from tests.conftest import start_sandbox, stop_sandbox
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

SUBJECTS = 64  # 4 waves of 16
MINUTES = 8.0


@pytest.fixture
def sandbox(tmp_path):
    """One static node of 16 CPUs: the queue the estimate prices."""
    box = start_sandbox(tmp_path / "state", "--nodes", "1", "--static-nodes", "1", "--cpus-per-node", "16")
    yield box
    stop_sandbox(box)


@pytest.mark.sandbox
def test_the_estimate_is_within_20_percent_of_the_replayed_runs_cost(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "replay")
    text = (project / "clustertools.yaml").read_text()
    text = text.replace("instance_types: [c6i.xlarge, c5.xlarge]", "instance_types: [c6i.4xlarge]")
    (project / "clustertools.yaml").write_text(text.replace("max_count: 10 ", "max_count: 1 "))
    subjects = write_subjects(project, [f"sub-{i:04d}" for i in range(SUBJECTS)])
    run = submit(sandbox, project, subjects.name, "--command", "sleep 1", "--throttle", "16")["run"]
    done = wait_for_run(sandbox, project, run, timeout=600)
    assert done["counts"]["SUCCEEDED"] == SUBJECTS

    spans = [TaskSpan.of_record(s["subject"], s["node"], s["start"], s["end"]) for s in done["subjects"]]
    table = load_price_table()
    node = NodeShape("c6i.4xlarge", 16, 32, max_nodes=1, capacity="spot", scaledown_idle_minutes=10)
    task = TaskShape(cpus=1, mem_gib=None, minutes=MINUTES, throttle=16)
    prices = Prices(
        instance_price(table, "us-east-1", "c6i.4xlarge").hourly_usd,
        instance_price(table, "us-east-1", "c6i.4xlarge", "spot").hourly_usd,
        instance_price(table, "us-east-1", "t3.medium").hourly_usd,
        table.label,
    )
    check = check_against_replay(spans, MINUTES, node, task, prices)
    print(
        f"mean subject {check.mean_seconds:.1f} s -> x{check.factor:.0f}; estimate ${check.estimate.total:.3f} "
        f"(head ${check.estimate.head_dollars:.3f}), replayed ${check.replayed.total:.3f} "
        f"(head ${check.replayed.head_dollars:.3f})"
    )
    assert check.replayed.head_dollars > 0 and check.estimate.head_dollars > 0  # the head node is part of both
    assert 0.8 <= check.ratio <= 1.2
