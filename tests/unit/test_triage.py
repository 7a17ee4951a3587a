"""Triage: the pure parser (cluster_tools/model/nodes/node_triage.py, triage_report.py) over literal log texts,
and the ParallelCluster side of the service with cluster_tools.transport.pcluster replaced at its boundary by
recorded records.

The bootstrap lines are the script's own format (bootstrap/on-node-configured.sh); the ParallelCluster
lines follow its daemons' logging config (``%(asctime)s - [%(name)s:%(funcName)s] - %(levelname)s -
%(message)s``) and messages of aws-parallelcluster-node (clustermgtd, slurm_resources, instance_manager,
resume); Slurm's lines are ``[ISO time] message``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from cluster_tools.model.clusters.cluster_record import ClusterRecord
from cluster_tools.model.nodes.bootstrap_log import parse_bootstrap, redact
from cluster_tools.model.nodes.node_triage import (
    LogFile,
    SourceText,
    choose_node,
    findings_of,
    gather_command,
    parse_bootstrap_failures,
    parse_launches,
    parse_sinfo_reasons,
    relevant_lines,
    split_gathered,
)
from cluster_tools.model.nodes.triage_report import build_report, detail_lines, summary_lines
from cluster_tools.services.remote import triage_logs as service
from cluster_tools.transport import pcluster as pc

# The log texts are verbatim, one log line per line; a line that ends in a backslash goes on in the next one
# (Python joins the two: the text has no line break there).
T = "clustertools-bootstrap[abcd-seg/head]:"
FIRST_RUN = f"""\
2024-05-01T11:30:00Z {T} bootstrap start: project=study cluster=abcd-seg role=head os=amzn 2023 runtime=apptainer \
shared=/shared
2024-05-01T11:30:00Z {T} step runtime-apptainer: start
Last metadata expiration check: 0:01:12 ago on Wed May  1 11:28:48 2024.
Package apptainer-1.3.1-1.el9.x86_64 is already installed.
2024-05-01T11:30:04Z {T} step runtime-apptainer: done
2024-05-01T11:30:04Z {T} step miniforge: start
sha256 verified: 3d5b4b5c1fd5ac7c5d3a7f7e8e3e0a3a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
PREFIX=/shared/clustertools/miniforge3
installation finished.
2024-05-01T11:30:41Z {T} step miniforge: done
2024-05-01T11:30:41Z {T} check env-file: ok
2024-05-01T11:30:41Z {T} step conda-env: start
Collecting package metadata (repodata.json): done
2024-05-01T11:33:02Z {T} step conda-env: done
2024-05-01T11:33:02Z {T} step image: start
INFO:    Converting OCI blobs to SIF format
2024-05-01T11:35:40Z {T} step image: done
2024-05-01T11:35:40Z {T} step node-env: start
CT_PROJECT=study
2024-05-01T11:35:40Z {T} step node-env: done
2024-05-01T11:35:40Z {T} bootstrap finished OK (5 step(s) run)
"""
NO_OP_RUN = f"""\
2024-05-01T12:00:00Z {T} bootstrap start: project=study cluster=abcd-seg role=head os=amzn 2023 runtime=apptainer \
shared=/shared
2024-05-01T12:00:00Z {T} step runtime-apptainer: already done (inputs unchanged)
2024-05-01T12:00:00Z {T} step miniforge: already done (inputs unchanged)
2024-05-01T12:00:01Z {T} check env-file: ok
2024-05-01T12:00:01Z {T} step conda-env: already done (inputs unchanged)
2024-05-01T12:00:01Z {T} step image: already done (inputs unchanged)
2024-05-01T12:00:01Z {T} step node-env: already done (inputs unchanged)
2024-05-01T12:00:01Z {T} bootstrap finished OK: nothing to do (every step already done)
"""
FAILED_RUN = f"""\
2024-05-01T12:00:00Z {T} bootstrap start: project=study cluster=abcd-seg role=head os=amzn 2023 runtime=apptainer \
shared=/shared
2024-05-01T12:00:00Z {T} step runtime-apptainer: already done (inputs unchanged)
2024-05-01T12:00:01Z {T} step miniforge: start
sha256 mismatch for \
https://github.com/conda-forge/miniforge/releases/download/24.11.3-0/Miniforge3-Linux-x86_64.sh?X-Amz-Credential=AKIAIO\
SFODNN7EXAMPLE%2F20240501&X-Amz-Signature=deadbeef: expected {"0" * 64}, got {"1" * 64}; nothing installed
2024-05-01T12:00:03Z {T} step miniforge failed (exit 1)
2024-05-01T12:00:03Z {T} bootstrap FAILED (exit 1)
"""


def test_a_failed_step_is_named_with_exit_code_time_and_its_last_lines():
    outcome = parse_bootstrap(FIRST_RUN + FAILED_RUN, "bootstrap")
    assert (outcome.state, outcome.failed_step, outcome.exit_code, outcome.ended_at) == (
        "failed",
        "miniforge",
        1,
        "2024-05-01T12:00:03Z",
    )
    assert outcome.steps_run == ("miniforge",) and outcome.steps_already_done == ("runtime-apptainer",)
    [line] = outcome.output
    assert line.startswith("sha256 mismatch for https://github.com/conda-forge/miniforge/releases/download/")
    assert "?<redacted>" in line and "AKIA" not in line and "deadbeef" not in line


def test_the_last_run_wins_and_a_second_run_is_seen_as_a_no_op():
    assert parse_bootstrap(FAILED_RUN + FIRST_RUN).state == "ok"
    outcome = parse_bootstrap(FIRST_RUN + NO_OP_RUN)
    assert outcome.state == "ok" and outcome.nothing_to_do and outcome.ended_at == "2024-05-01T12:00:01Z"
    assert outcome.steps_already_done == ("runtime-apptainer", "miniforge", "conda-env", "image", "node-env")
    first = parse_bootstrap(FIRST_RUN)
    assert not first.nothing_to_do and first.steps_run == (
        "runtime-apptainer",
        "miniforge",
        "conda-env",
        "image",
        "node-env",
    )


def test_a_compute_nodes_failed_check_keeps_the_checks_output():
    text = """\
Cloud-init v. 22.2.2 running 'modules:final' at Wed, 01 May 2024 11:46:10 +0000. Up 31.70 seconds.
2024-05-01T11:47:02Z clustertools-bootstrap[abcd-seg/compute]: bootstrap start: project=study cluster=abcd-seg \
role=compute os=amzn 2023 runtime=apptainer shared=/shared
2024-05-01T11:47:02Z clustertools-bootstrap[abcd-seg/compute]: step runtime-apptainer: already done (inputs unchanged)
found /shared/clustertools/miniforge3/bin/conda
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: check miniforge: ok
missing /shared/clustertools/images/ghcr.io_acme_seg_1.0-1a2b3c4d.sif: the head node pulls the image into shared storage
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: step image failed (exit 1)
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: bootstrap FAILED (exit 1)
2024-05-01 11:47:03,611 - cloud-init[1850]: util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/part-001 \
[1]
Cloud-init v. 22.2.2 finished at Wed, 01 May 2024 11:47:04 +0000. Datasource DataSourceEc2.  Up 85.02 seconds
"""
    outcome = parse_bootstrap(text, "cloud-init-output")
    assert (outcome.failed_step, outcome.exit_code) == ("image", 1)
    assert outcome.output == (
        "missing /shared/clustertools/images/ghcr.io_acme_seg_1.0-1a2b3c4d.sif: the head node "
        "pulls the image into shared storage",
    )
    kept = [line.text for line in relevant_lines("cloud-init-output", text)]
    assert kept == [
        "missing /shared/clustertools/images/ghcr.io_acme_seg_1.0-1a2b3c4d.sif: the head node pulls the "
        "image into shared storage",
        "step image failed (exit 1)",
        "bootstrap FAILED (exit 1)",
        "2024-05-01 11:47:03,611 - cloud-init[1850]: util.py[WARNING]: Failed running "
        "/var/lib/cloud/instance/scripts/part-001 [1]",
    ]


@pytest.mark.parametrize(
    "text, state, step, code, error",
    [
        (
            f"2024-05-01T12:00:00Z {T} bootstrap start: x\n2024-05-01T12:00:00Z {T} error: cannot tell the node role: "
            f"/etc/parallelcluster/cfnconfig is missing (not a ParallelCluster node?)\n"
            f"2024-05-01T12:00:00Z {T} bootstrap FAILED (exit 1)\n",
            "failed",
            None,
            1,
            "cannot tell the node role: /etc/parallelcluster/cfnconfig is missing (not a ParallelCluster node?)",
        ),
        (
            "on-node-configured.sh: --miniforge-sha256 must be 64 hex digits\n"
            "usage: on-node-configured.sh --project P ...\n",
            "failed",
            "arguments",
            2,
            "--miniforge-sha256 must be 64 hex digits",
        ),
        (
            f"2024-05-01T12:00:00Z {T} bootstrap start: x\n"
            f"2024-05-01T12:00:00Z {T} step image: start\n"
            "INFO: Copying blob\n",
            "running",
            None,
            None,
            None,
        ),
        ("Cloud-init v. 22.2.2 running 'modules:final'\nnothing of ours\n", "never-ran", None, None, None),
        ("", "never-ran", None, None, None),
    ],
)
def test_outcomes_other_than_a_failed_step(text, state, step, code, error):
    outcome = parse_bootstrap(text)
    assert (outcome.state, outcome.failed_step, outcome.exit_code, outcome.error) == (state, step, code, error)


def test_a_run_still_going_names_its_step():
    outcome = parse_bootstrap(
        f"2024-05-01T12:00:00Z {T} bootstrap start: x\n2024-05-01T12:00:00Z {T} step image: start\n"
    )
    assert outcome.current_step == "image" and outcome.started_at == "2024-05-01T12:00:00Z"


def test_syslog_copies_of_the_lines_are_read_too():
    syslog = """\
May  1 12:00:00 ip-10-0-1-25 clustertools-bootstrap[812]: bootstrap start: project=study cluster=abcd-seg role=head
May  1 12:00:01 ip-10-0-1-25 systemd[1]: Started session-3.scope.
May  1 12:00:03 ip-10-0-1-25 clustertools-bootstrap[812]: step miniforge failed (exit 1)
May  1 12:00:03 ip-10-0-1-25 clustertools-bootstrap[812]: bootstrap FAILED (exit 1)
"""
    outcome = parse_bootstrap(syslog, "system-messages")
    assert (outcome.failed_step, outcome.exit_code, outcome.ended_at) == ("miniforge", 1, "May  1 12:00:03")


@pytest.mark.parametrize(
    "line, secret",
    [
        (
            "fetch https://bucket.s3.amazonaws.com/Miniforge3.sh?X-Amz-Signature=abc123&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE",
            "abc123",
        ),
        ("using key AKIAIOSFODNN7EXAMPLE for the download", "AKIAIOSFODNN7EXAMPLE"),
        ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("db password: hunter2", "hunter2"),
    ],
)
def test_secrets_never_leave_the_parser(line, secret):
    assert secret not in redact(line)
    assert secret not in json.dumps(
        build_report(
            "c",
            "ssh",
            [SourceText("cloud-init-output", "/x", text=line + " failed")],
            node=None,
            node_why="",
            bootstrap_from=(),
        ).to_json()
    )


# --- ParallelCluster's logs ---------------------------------------------------------------------------

RESUME = """\
2024-05-01 11:40:01,101 - [slurm_plugin.resume:main] - INFO - ResumeProgram startup.
2024-05-01 11:40:01,520 - [slurm_plugin.resume:_resume] - INFO - Launching EC2 instances for the following Slurm \
nodes: seg16-dy-seg16-[1-3]
2024-05-01 11:40:01,733 - [slurm_plugin.instance_manager:add_instances_for_nodes] - INFO - Launching instances for \
slurm nodes (x3) ['seg16-dy-seg16-1', 'seg16-dy-seg16-2', 'seg16-dy-seg16-3']
2024-05-01 11:40:05,020 - [slurm_plugin.instance_manager:_update_slurm_node_addrs] - INFO - Nodes are now configured \
with instances: (x2) ["('seg16-dy-seg16-1', EC2Instance(id='i-0a1b2c3d4e5f60001', private_ip='10.0.1.55', \
hostname='ip-10-0-1-55', launch_time=datetime.datetime(2024, 5, 1, 11, 40, 4, tzinfo=tzlocal()), slurm_node=None))", \
"('seg16-dy-seg16-2', EC2Instance(id='i-0a1b2c3d4e5f60002', private_ip='10.0.1.56', hostname='ip-10-0-1-56', \
launch_time=datetime.datetime(2024, 5, 1, 11, 40, 4, tzinfo=tzlocal()), slurm_node=None))"]
2024-05-01 11:40:05,021 - [slurm_plugin.instance_manager:_update_slurm_node_addrs] - WARNING - Failed to launch \
instances due to limited EC2 capacity for following nodes: (x1) ['seg16-dy-seg16-3']
2024-05-01 11:41:30,300 - [slurm_plugin.instance_manager:add_instances_for_nodes] - ERROR - Encountered exception when \
launching instances for nodes (x1) ['seg16-dy-seg16-3']: An error occurred (InsufficientInstanceCapacity) when calling \
the CreateFleet operation: We currently do not have sufficient c6i.4xlarge capacity in the Availability Zone you \
requested (us-east-1a).
2024-05-01 11:41:30,301 - [slurm_plugin.resume:_resume] - ERROR - Failed to launch following nodes, setting nodes to \
down: (x1) ['seg16-dy-seg16-3']
2024-05-01 11:45:02,000 - [slurm_plugin.instance_manager:_update_slurm_node_addrs] - INFO - Nodes are now configured \
with instances: (x1) ["('seg16-dy-seg16-3', EC2Instance(id='i-0a1b2c3d4e5f60057', private_ip='10.0.1.57', \
hostname='ip-10-0-1-57', launch_time=datetime.datetime(2024, 5, 1, 11, 45, 1, tzinfo=tzlocal()), slurm_node=None))"]
2024-05-01 11:45:02,101 - [slurm_plugin.resume:main] - INFO - ResumeProgram finished.
"""
CLUSTERMGTD = """\
2024-05-01 12:10:05,112 - [slurm_plugin.clustermgtd:manage_cluster] - INFO - Managing cluster...
2024-05-01 12:10:05,201 - [slurm_plugin.clustermgtd:manage_cluster] - INFO - Current compute fleet status: RUNNING
2024-05-01 12:10:10,875 - [slurm_plugin.slurm_resources:is_healthy] - WARNING - Node state check: node \
seg16-dy-seg16-2 in DOWN, node state: DOWN+CLOUD+NOT_RESPONDING
2024-05-01 12:10:10,875 - [slurm_plugin.slurm_resources:is_healthy] - WARNING - Node state check: node \
seg16-dy-seg16-3 in DOWN, node state: DOWN+CLOUD+NOT_RESPONDING+POWERING_UP
2024-05-01 12:10:10,876 - [slurm_plugin.clustermgtd:_maintain_nodes] - INFO - Found the following unhealthy dynamic \
nodes: (x1) ['seg16-dy-seg16-3(10.0.1.57)']
2024-05-01 12:10:10,877 - [slurm_plugin.slurm_resources:is_bootstrap_failure] - WARNING - Node bootstrap error: Resume \
timeout expires for node seg16-dy-seg16-3(10.0.1.57), node state: DOWN+CLOUD+NOT_RESPONDING+POWERING_UP
2024-05-01 12:10:10,878 - [slurm_plugin.clustermgtd:_handle_bootstrap_failure_nodes] - WARNING - Found the following \
bootstrap failure nodes: (x1) ['seg16-dy-seg16-3(10.0.1.57)']
2024-05-01 12:11:10,875 - [slurm_plugin.slurm_resources:is_healthy] - WARNING - Node state check: node \
seg16-dy-seg16-3 in DOWN, node state: DOWN+CLOUD+NOT_RESPONDING+POWERING_UP
2024-05-01 12:11:10,879 - [slurm_plugin.clustermgtd:_handle_protected_mode_process] - INFO - Partitions bootstrap \
failure count: {'seg16': {'seg16': 10}}, cluster will be set into protected mode if protected failure count reaches \
threshold 10
2024-05-01 12:11:10,880 - [slurm_plugin.clustermgtd:_enter_protected_mode] - INFO - Placing bootstrap failure \
partitions to INACTIVE: ['seg16']
2024-05-01 12:11:10,881 - [slurm_plugin.clustermgtd:_enter_protected_mode] - WARNING - Setting cluster into protected \
mode due to failures detected in node provisioning. Please investigate the issue and then use 'pcluster \
update-compute-fleet --status START_REQUESTED' command to re-enable the fleet.
2024-05-01 12:11:10,990 - [slurm_plugin.clustermgtd:_update_compute_fleet_status] - INFO - Updating compute fleet \
status from RUNNING to PROTECTED
"""
SLURMCTLD = """\
[2024-05-01T11:40:01.512] sched: _slurm_rpc_allocate_resources JobId=12 NodeList=seg16-dy-seg16-[1-3] usec=1302
[2024-05-01T12:10:01.004] node seg16-dy-seg16-3 not resumed by ResumeTimeout(1800) - marking down and power_save
[2024-05-01T12:10:01.005] requeue job JobId=12_7(13) due to failure of node seg16-dy-seg16-3
[2024-05-01T12:10:11.220] update_node: node seg16-dy-seg16-3 reason set to: Scheduler health check failed
[2024-05-01T12:10:11.220] update_node: node seg16-dy-seg16-3 state set to DOWN
[2024-05-01T12:12:00.100] error: Nodes seg16-dy-seg16-2 not responding, setting DOWN
"""
SINFO = """\
seg16-dy-seg16-2|down~|2024-05-01T12:12:00|Not responding
seg16-dy-seg16-3|down~|2024-05-01T12:10:11|Scheduler health check failed
"""


def test_launches_map_slurm_nodes_to_instances():
    launches = parse_launches(RESUME)
    assert [(x.node, x.instance_id, x.private_ip, x.short_hostname) for x in launches] == [
        ("seg16-dy-seg16-1", "i-0a1b2c3d4e5f60001", "10.0.1.55", "ip-10-0-1-55"),
        ("seg16-dy-seg16-2", "i-0a1b2c3d4e5f60002", "10.0.1.56", "ip-10-0-1-56"),
        ("seg16-dy-seg16-3", "i-0a1b2c3d4e5f60057", "10.0.1.57", "ip-10-0-1-57"),
    ]
    assert launches[-1].time == "2024-05-01 11:45:02,000"


def test_the_node_chosen_is_the_last_bootstrap_failure_else_the_last_launch():
    launches, failures = parse_launches(RESUME), parse_bootstrap_failures(CLUSTERMGTD)
    assert failures == [("seg16-dy-seg16-3", "10.0.1.57", "2024-05-01 12:10:10,877")]
    chosen = choose_node(None, launches=launches, failures=failures)
    assert chosen.name == "seg16-dy-seg16-3" and chosen.launch.instance_id == "i-0a1b2c3d4e5f60057"
    assert "bootstrap failed" in chosen.why
    assert choose_node(None, launches=launches, failures=[]).name == "seg16-dy-seg16-3"  # the last launched
    assert choose_node("seg16-dy-seg16-1", launches=launches, failures=failures).launch.private_ip == "10.0.1.55"
    assert choose_node("i-0a1b2c3d4e5f60002", launches=launches, failures=failures).name == "seg16-dy-seg16-2"
    assert choose_node(None, launches=[], failures=[]).name is None


def test_findings_name_the_ec2_error_the_bootstrap_failures_and_protected_mode():
    found = findings_of({"slurm_resume": RESUME, "clustermgtd": CLUSTERMGTD})
    assert found == [
        "EC2 did not launch instances: LimitedInstanceCapacity (1x in slurm_resume, last 2024-05-01 11:40:05,021)",
        "EC2 did not launch instances: InsufficientInstanceCapacity (1x in slurm_resume, last 2024-05-01 11:41:30,300)",
        "clustermgtd saw 1 node bootstrap error(s): seg16-dy-seg16-3",
        "clustermgtd put the cluster in protected mode (queues with repeated bootstrap failures are INACTIVE), "
        "last said 2024-05-01 12:11:10,990",
    ]


def test_protected_mode_is_read_from_clustermgtds_own_words_not_from_its_failure_count():
    counting = CLUSTERMGTD.split("2024-05-01 12:11:10,880")[0]  # "... will be set into protected mode if ..."
    assert "will be set into protected mode" in counting
    assert not any("protected mode" in f for f in findings_of({"clustermgtd": counting}))
    restarted = CLUSTERMGTD + (
        "2024-05-01 13:00:00,000 - [slurm_plugin.clustermgtd:manage_cluster] - INFO - "
        "Current compute fleet status: RUNNING\n"
    )
    assert not any("protected mode" in f for f in findings_of({"clustermgtd": restarted}))
    still = CLUSTERMGTD + (
        "2024-05-01 13:00:00,000 - [slurm_plugin.clustermgtd:manage_cluster] - INFO - "
        "Current compute fleet status: PROTECTED\n"
    )
    assert any(f.endswith("last said 2024-05-01 13:00:00,000") for f in findings_of({"clustermgtd": still}))


def test_head_node_logs_are_narrowed_to_the_node_and_repeats_folded():
    kept = relevant_lines("clustermgtd", CLUSTERMGTD, node_names=("seg16-dy-seg16-3", "i-0a1b2c3d4e5f60057"))
    texts = [line.text for line in kept]
    assert not any("seg16-dy-seg16-2" in t for t in texts), "another node's lines are left out"
    state_check = [line for line in kept if line.text.startswith("Node state check: node seg16-dy-seg16-3")]
    assert len(state_check) == 1 and state_check[0].repeats == 2 and state_check[0].time == "2024-05-01 12:11:10,875"
    assert any(t.startswith("Setting cluster into protected mode") for t in texts)  # about no node: kept
    assert "Managing cluster..." not in texts and all(line.level in ("warning", "info") for line in kept)
    slurmctld = [line.text for line in relevant_lines("slurmctld", SLURMCTLD, node_names=("seg16-dy-seg16-3",))]
    assert slurmctld == [
        "node seg16-dy-seg16-3 not resumed by ResumeTimeout(1800) - marking down and power_save",
        "update_node: node seg16-dy-seg16-3 reason set to: Scheduler health check failed",
        "update_node: node seg16-dy-seg16-3 state set to DOWN",
    ]


def test_sinfo_reasons():
    assert [(d.node, d.state, d.reason) for d in parse_sinfo_reasons(SINFO + "garbage\n")] == [
        ("seg16-dy-seg16-2", "down~", "Not responding"),
        ("seg16-dy-seg16-3", "down~", "Scheduler health check failed"),
    ]


# --- gathering over one command ---------------------------------------------------------------------


def test_the_gather_command_reads_what_exists_and_reports_what_does_not(tmp_path):
    hostile = tmp_path / "it's a; $(log) dir"
    hostile.mkdir()
    (hostile / "boot.log").write_text("one\ntwo\nthree\n")
    (tmp_path / "ctld.log").write_text("==clustertools-triage-0000000000000000== fake ok /etc/shadow\nreal line\n")
    files = [
        LogFile("bootstrap", (str(tmp_path / "absent.log"), str(hostile / "boot.log")), 2),
        LogFile("slurmctld", (str(tmp_path / "ctld.log"),)),
        LogFile("slurmd", (str(tmp_path / "nope.log"), str(tmp_path / "nope2.log"))),
    ]
    command, marker = gather_command(files, sinfo=False)
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30).stdout
    sources = split_gathered(out, marker)
    assert [(s.name, s.status) for s in sources] == [("bootstrap", "ok"), ("slurmctld", "ok"), ("slurmd", "missing")]
    assert sources[0].where == str(hostile / "boot.log") and sources[0].text == "two\nthree"
    assert sources[1].text.splitlines()[1] == "real line", "a line of a file cannot forge a section"
    assert sources[2].where == f"{tmp_path / 'nope.log'} {tmp_path / 'nope2.log'}"


# --- the report ---------------------------------------------------------------------------------------

COMPUTE_CLOUD_INIT = """\
Cloud-init v. 22.2.2 running 'modules:final' at Wed, 01 May 2024 11:46:10 +0000. Up 31.70 seconds.
2024-05-01T11:47:02Z clustertools-bootstrap[abcd-seg/compute]: bootstrap start: project=study cluster=abcd-seg \
role=compute os=amzn 2023 runtime=apptainer shared=/shared
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: check miniforge: ok
missing /shared/clustertools/images/ghcr.io_acme_seg_1.0-1a2b3c4d.sif: the head node pulls the image into shared storage
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: step image failed (exit 1)
2024-05-01T11:47:03Z clustertools-bootstrap[abcd-seg/compute]: bootstrap FAILED (exit 1)
"""


def test_the_summary_comes_first_and_says_which_step_failed_and_that_the_fleet_is_protected():
    sources = [
        SourceText("bootstrap", "/var/log/clustertools-bootstrap.log", text=FIRST_RUN),
        SourceText("clustermgtd", "/var/log/parallelcluster/clustermgtd", text=CLUSTERMGTD),
        SourceText("slurm_resume", "/var/log/parallelcluster/slurm_resume.log", text=RESUME),
        SourceText("slurmctld", "/var/log/slurmctld.log", "missing"),
        SourceText("sinfo", "sinfo -R", text=SINFO),
        SourceText(
            "cloud-init-output",
            "CloudWatch ip-10-0-1-57.i-0a1b2c3d4e5f60057.cloud-init-output",
            text=COMPUTE_CLOUD_INIT,
            node="seg16-dy-seg16-3",
        ),
    ]
    report = build_report(
        "abcd-seg",
        "parallelcluster",
        sources,
        node="seg16-dy-seg16-3",
        node_why="asked for",
        bootstrap_from=("cloud-init-output",),
        node_names=("seg16-dy-seg16-3",),
        fleet="PROTECTED",
        cluster_status="CREATE_COMPLETE",
        lines=3,
    )
    summary = summary_lines(report)
    assert summary[1] == "node seg16-dy-seg16-3: bootstrap FAILED at step image (exit 1) at 2024-05-01T11:47:03Z"
    assert summary[2].startswith("  | missing /shared/clustertools/images/")
    assert summary[3].startswith("fleet: PROTECTED (cluster CREATE_COMPLETE) -- PROTECTED:")
    assert "down: seg16-dy-seg16-3 down~ since 2024-05-01T12:10:11: Scheduler health check failed" in summary
    details = detail_lines(report)
    assert "== slurmctld (head node: /var/log/slurmctld.log): missing" in details
    assert any(
        line.startswith("== clustermgtd (head node: /var/log/parallelcluster/clustermgtd), ")
        and "earlier line(s) not shown" in line
        for line in details
    )
    data = json.loads(json.dumps(report.to_json()))
    assert data["bootstrap"]["failed_step"] == "image" and data["protected"] is True
    assert data["sources"][3]["status"] == "missing" and len(data["sources"][1]["lines"]) == 3


# --- the service, with ParallelCluster replaced at our transport's boundary ---------------------------

T0 = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
HEAD = pc.Instance(
    instance_id="i-0a1b2c3d4e5f60718",
    instance_type="t3.medium",
    state="running",
    private_ip="10.0.1.25",
    public_ip="198.51.100.7",
    launch_time=T0,
)


def described(
    fleet: str = "PROTECTED", status: str = "CREATE_COMPLETE", head=HEAD, failures=()
) -> pc.ClusterDescription:
    return pc.ClusterDescription(
        name="abcd-seg",
        region="us-east-1",
        version="3.13.0",
        status=status,
        stack_status=status,
        stack_arn="arn:aws:cloudformation:us-east-1:123456789012:stack/x",
        scheduler="slurm",
        compute_fleet_status=fleet,
        creation_time=T0,
        last_updated_time=T0,
        head_node=head,
        failures=tuple(failures),
    )


def events(text: str) -> list[pc.LogEvent]:
    return [pc.LogEvent(timestamp=T0, message=line) for line in text.splitlines()]


@pytest.fixture
def aws(monkeypatch):
    """describe_cluster and get_cluster_log_events answering from recorded records; every call is kept."""
    calls: list[tuple] = []
    streams: dict[str, object] = {}

    def describe(name, *, region=None):
        calls.append(("describe_cluster", name, region))
        return streams["__describe__"]

    def log_events(name, stream, *, region=None, limit=100, start_from_head=False):
        calls.append(("get_cluster_log_events", name, stream, region, limit))
        answer = streams.get(
            stream, pc.PclusterNotFound(f"read log {stream} of {name}: Log stream not found", status=404)
        )
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def log_streams(name, *, region=None, private_dns_name=None, node_type=None):
        calls.append(("list_cluster_log_streams", name, region, node_type))
        return [
            pc.LogStream(stream, T0)
            for stream in streams
            if not stream.startswith("__") and not stream.startswith("ip-10-0-1-25.")
        ]  # the head node's are not listed as ComputeNode

    monkeypatch.setattr(pc, "describe_cluster", describe)
    monkeypatch.setattr(pc, "get_cluster_log_events", log_events)
    monkeypatch.setattr(pc, "list_cluster_log_streams", log_streams)
    return streams, calls


RECORD = ClusterRecord(
    name="abcd-seg",
    provider="parallelcluster",
    host="198.51.100.7",
    user="ec2-user",
    known_hosts="/nonexistent/known_hosts",
    region="us-east-1",
)


def head_over_ssh(record, files, sinfo):
    """What the one SSH command gathers on the head node (recorded texts)."""
    assert [f.name for f in files] == ["bootstrap", "clustermgtd", "slurm_resume", "slurmctld"] and sinfo
    texts = {"bootstrap": FIRST_RUN, "clustermgtd": CLUSTERMGTD, "slurm_resume": RESUME, "slurmctld": SLURMCTLD}
    return [SourceText(f.name, f.paths[0], text=texts[f.name]) for f in files] + [
        SourceText("sinfo", "sinfo -R", text=SINFO)
    ]


def test_parallelcluster_triage_reads_the_failed_compute_nodes_streams_and_the_fleet(aws, tmp_path):
    streams, calls = aws
    streams["__describe__"] = described()
    prefix = "ip-10-0-1-57.i-0a1b2c3d4e5f60057"
    streams[f"{prefix}.cloud-init-output"] = events(COMPUTE_CLOUD_INIT)
    streams[f"{prefix}.computemgtd"] = events(
        "2024-05-01 11:47:10,100 - [slurm_plugin.computemgtd:_run_computemgtd] - INFO - "
        "Running clustermgtd heartbeat check\n"
    )
    streams[f"{prefix}.slurmd"] = pc.PclusterError("read log: throttled", status=429)
    report = service.triage(None, RECORD, None, lines=10, gather=head_over_ssh)
    assert report.node == "seg16-dy-seg16-3" and "i-0a1b2c3d4e5f60057, 10.0.1.57" in report.node_why
    assert (report.bootstrap.state, report.bootstrap.failed_step, report.bootstrap.source) == (
        "failed",
        "image",
        "cloud-init-output",
    ), "the node's own bootstrap, not the head node's OK run"
    assert report.fleet == "PROTECTED" and report.protected
    read = [c[2] for c in calls if c[0] == "get_cluster_log_events"]
    assert read == [f"{prefix}.{s}" for s in ("cloud-init-output", "bootstrap_error_msg", "computemgtd", "slurmd")]
    assert all(c[3] == "us-east-1" and c[4] == service.STREAM_EVENTS for c in calls if c[0] == "get_cluster_log_events")
    status = {s.name: (s.status, s.node) for s in report.sources}
    assert status["bootstrap_error_msg"] == ("missing", "seg16-dy-seg16-3")
    assert status["slurmd"][0] == "error" and status["clustermgtd"] == ("ok", "head node")
    assert summary_lines(report)[1].startswith("node seg16-dy-seg16-3: bootstrap FAILED at step image (exit 1)")


def test_a_failed_create_is_triaged_from_cloudwatch_alone(aws):
    """`up` records a cluster only once it is complete: the head node's streams tell why it failed."""
    streams, calls = aws
    streams["__describe__"] = described(
        fleet="STOPPED",
        status="CREATE_FAILED",
        failures=[("OnNodeConfiguredExecutionFailure", "Failed to execute OnNodeConfigured script.")],
    )
    head = "ip-10-0-1-25.i-0a1b2c3d4e5f60718"
    streams[f"{head}.system-messages"] = events("""\
May  1 11:31:00 ip-10-0-1-25 clustertools-bootstrap[812]: bootstrap start: project=study cluster=abcd-seg role=head
May  1 11:31:02 ip-10-0-1-25 clustertools-bootstrap[812]: step miniforge failed (exit 1)
May  1 11:31:02 ip-10-0-1-25 clustertools-bootstrap[812]: bootstrap FAILED (exit 1)
""")
    streams[f"{head}.chef-client"] = events(
        "[2024-05-01T11:31:03+00:00] ERROR: Failed to execute OnNodeConfigured script"
    )
    report = service.triage(
        None,
        None,
        None,
        cluster_name="abcd-seg",
        region="us-east-1",
        gather=lambda *a: pytest.fail("no SSH without a record"),
    )
    assert report.bootstrap.failed_step == "miniforge" and report.bootstrap.source == "system-messages"
    assert report.findings[0] == "OnNodeConfiguredExecutionFailure: Failed to execute OnNodeConfigured script."
    assert report.cluster_status == "CREATE_FAILED" and not report.protected
    names = [s.name for s in report.sources]
    assert "syslog" not in names, "the OS's other syslog stream is absent by design, not news"
    assert "no compute node has logged anything" in " ".join(report.notes)
    assert [c for c in calls if c[0] == "describe_cluster"] == [("describe_cluster", "abcd-seg", "us-east-1")]


def test_without_launch_lines_the_compute_node_that_logged_last_is_read(aws):
    """The head node's slurm_resume lines have rotated away: the streams are found by listing them."""
    streams, calls = aws
    streams["__describe__"] = described(fleet="RUNNING")
    streams["ip-10-0-1-25.i-0a1b2c3d4e5f60718.slurm_resume"] = events("")
    prefix = "ip-10-0-1-57.i-0a1b2c3d4e5f60057"
    streams[f"{prefix}.cloud-init-output"] = events(COMPUTE_CLOUD_INIT)
    report = service.triage(
        None,
        None,
        None,
        cluster_name="abcd-seg",
        region="us-east-1",
        gather=lambda *a: pytest.fail("no SSH without a record"),
    )
    assert ("list_cluster_log_streams", "abcd-seg", "us-east-1", "ComputeNode") in calls
    assert report.bootstrap.failed_step == "image" and report.bootstrap.source == "cloud-init-output"
    assert f"the one that logged last, {prefix}" in " ".join(report.notes)


def test_an_unreachable_head_node_falls_back_to_cloudwatch(aws):
    from cluster_tools.errors import TransportError

    streams, _ = aws
    streams["__describe__"] = described(fleet="RUNNING")
    streams["ip-10-0-1-25.i-0a1b2c3d4e5f60718.slurm_resume"] = events(RESUME)

    def unreachable(*args):
        raise TransportError("cannot reach ec2-user@198.51.100.7:22: Connection timed out")

    report = service.triage(None, RECORD, "head", gather=unreachable)
    assert report.node == "head" and report.fleet == "RUNNING" and not report.protected
    assert "cannot be reached over SSH" in report.notes[0]
    assert any(s.name == "slurm_resume" and s.status == "ok" for s in report.sources)


def test_an_ssh_cluster_is_read_on_its_head_node_only():
    seen = []

    def gather(record, files, sinfo):
        seen.append([f.name for f in files])
        return [
            SourceText("bootstrap", "/var/log/clustertools-bootstrap.log", "missing"),
            SourceText("slurmctld", "/var/log/slurm/slurmctld.log", text=SLURMCTLD),
            SourceText("sinfo", "sinfo -R", "error", "sinfo: error: Unable to contact slurm controller"),
        ]

    record = ClusterRecord(name="uni", host="login.hpc.example.edu", user="alice", known_hosts="/x")
    report = service.triage(None, record, "node042", gather=gather)
    assert seen == [["bootstrap", "slurmctld"]]
    assert report.kind == "ssh" and report.bootstrap.state == "never-ran" and report.fleet is None
    assert "node042's own logs stay on node042" in report.notes[0]
    assert "== sinfo (head node: sinfo -R): error: sinfo: error: Unable to contact slurm controller" in detail_lines(
        report
    )
    assert summary_lines(report)[2] == "fleet: not a ParallelCluster cluster (ssh): no protected mode"
