"""The command line: click commands that parse, call one service, and print."""

from cluster_tools.cli.app import cli
from cluster_tools.cli import autostop_cmds, aws_cmds, cluster_cmds, cluster_config_cmds, cost_cmds, interactive_cmds, project_cmds, report_cmds, results_cmds, run_cmds, sandbox_cmds, triage_cmds  # noqa: F401  (register commands)


def main() -> None:
    cli(prog_name="clustertools")
