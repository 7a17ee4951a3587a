"""`submit` says what a run will cost before it sends it to a ParallelCluster cluster, and above the
project's cost.confirm_above_usd it asks (a terminal) or refuses without --yes (a script).

A ParallelCluster cluster cannot run here: the sandbox is registered a second time as one (provider
parallelcluster, the same SSH address and pinned key), which is all submit looks at to price a run."""

from __future__ import annotations

import json
import shutil

import pytest

from cluster_tools.store.cluster_store import forget_cluster, save_cluster
from cluster_tools.store.state_dir import StateDir
from tests.helpers import err, out
from tests.integration.run_helpers import make_project, wait_for_run, write_subjects


@pytest.fixture
def aws_like(sandbox):
    """The sandbox registered a second time, as a ParallelCluster cluster; forgotten again afterwards, so
    the session's other tests still find one cluster and need no -c."""
    state = StateDir(sandbox.state)
    known = state.known_hosts("aws-like")
    shutil.copy(sandbox.record.known_hosts, known)
    save_cluster(
        state,
        sandbox.record.model_copy(
            update={"name": "aws-like", "provider": "parallelcluster", "sandbox": False, "known_hosts": known}
        ),
    )
    yield "aws-like"
    forget_cluster(state, "aws-like")


def test_submit_prices_the_run_and_refuses_above_the_threshold_without_yes(sandbox, aws_like, tmp_path):
    cluster = aws_like
    project = make_project(sandbox, tmp_path, "priced")
    text = (project / "clustertools.yaml").read_text()
    (project / "clustertools.yaml").write_text(text + "cost:\n  minutes_per_subject: 8\n  confirm_above_usd: 0.0001\n")
    subjects = write_subjects(project, ["sub-a", "sub-b", "sub-c"])

    refused = sandbox.cli("submit", subjects.name, "-c", cluster, "--command", "true", cwd=project)
    assert refused.returncode == 1 and "estimate: ~$" in err(refused)
    assert "Error: the estimate $" in err(refused) and "nothing was submitted (hint: pass --yes" in err(refused)
    assert json.loads(out(sandbox.cli("runs", "--json", cwd=project))) == []  # nothing recorded, nothing sent

    sent = sandbox.cli("submit", subjects.name, "-c", cluster, "--command", "true", "--yes", "--json", cwd=project)
    assert sent.returncode == 0, err(sent)
    assert "3 subjects (spot, head node included)" in err(sent) and "minutes per subject from option" in err(sent)
    run = json.loads(out(sent))["run"]
    assert wait_for_run(sandbox, project, run)["counts"]["SUCCEEDED"] == 3


def test_no_estimate_where_no_aws_money_is_spent(sandbox, tmp_path):
    project = make_project(sandbox, tmp_path, "free")
    text = (project / "clustertools.yaml").read_text()
    (project / "clustertools.yaml").write_text(text + "cost:\n  confirm_above_usd: 0\n")
    subjects = write_subjects(project, ["sub-a"])
    result = sandbox.cli("submit", subjects.name, "--command", "true", "--json", cwd=project)
    assert result.returncode == 0 and "estimate" not in err(result), err(result)
    # finished before the session's sandbox stops: a task killed mid-upload would leave its marker behind
    assert wait_for_run(sandbox, project, json.loads(out(result))["run"])["counts"]["SUCCEEDED"] == 1
