"""`clustertools cost estimate` through the real CLI on a fresh `init` project (priced from the table)."""

from __future__ import annotations

import json

import pytest

from cluster_tools.model.cost.pricing import instance_price, load_price_table
from tests.helpers import err, out, run_cli


@pytest.fixture
def study(tmp_path):
    state = tmp_path / "state"
    assert run_cli("init", str(tmp_path / "study"), state=state).returncode == 0
    return tmp_path / "study", state


def test_estimate_of_a_subject_file_prices_spot_and_on_demand(study):
    project, state = study
    (project / "many.txt").write_text("".join(f"sub-{i:04d}\n" for i in range(1000)))
    result = run_cli("cost", "estimate", "many.txt", "--minutes-per-subject", "8", "--json", state=state, cwd=project)
    assert result.returncode == 0, err(result)
    data = json.loads(out(result))
    # the init project's queue: c6i.xlarge spot (4 vCPUs), up to 10 nodes; job.cpus 1
    assert (data["subjects"], data["instance_type"], data["capacity"], data["tasks_per_node"]) == (
        1000,
        "c6i.xlarge",
        "spot",
        4,
    )
    assert (data["nodes"], data["waves"]) == (10, 25) and data["wall_minutes"] == 6 + 25 * 8
    table = load_price_table()
    head = data["head_hours"] * instance_price(table, "us-east-1", "t3.medium").hourly_usd
    spot = data["compute_node_hours"] * instance_price(table, "us-east-1", "c6i.xlarge", "spot").hourly_usd
    assert data["dollars"]["spot"] == pytest.approx(spot + head, abs=0.02)
    assert data["dollars"]["ondemand"] > data["dollars"]["spot"] and data["spot_is_estimate"] is True


def test_estimate_text_names_the_queue_the_wall_time_and_the_price_date(study):
    project, state = study
    result = run_cli("cost", "estimate", "--subjects", "100", "--minutes-per-subject", "8", state=state, cwd=project)
    assert result.returncode == 0, err(result)
    text = out(result)
    assert "100 subjects on queue spot: c6i.xlarge" in text and "spot (this queue)" in text
    assert "prices: price table of " in text and "spot ~ estimate" in text


def test_without_minutes_job_time_is_the_upper_bound_and_said_so(study):
    project, state = study
    result = run_cli("cost", "estimate", "--subjects", "10", "--json", state=state, cwd=project)
    assert json.loads(out(result))["minutes_from"].startswith("job.time")


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "Error: give a subjects file or --subjects N"),
        (("--subjects", "5", "--minutes-per-subject", "0"), "Invalid value for '--minutes-per-subject'"),
    ],
)
def test_bad_arguments_are_one_line(study, args, message):
    project, state = study
    result = run_cli("cost", "estimate", *args, state=state, cwd=project)
    assert result.returncode != 0 and message in err(result) and "Traceback" not in err(result)


def test_a_project_without_a_parallelcluster_section_says_what_is_missing(study):
    project, state = study
    text = (project / "clustertools.yaml").read_text()
    (project / "clustertools.yaml").write_text(text[: text.index("parallelcluster:")])
    result = run_cli("cost", "estimate", "--subjects", "5", state=state, cwd=project)
    assert result.returncode == 1
    assert err(result).startswith("Error: cost figures need the project's parallelcluster: section")
