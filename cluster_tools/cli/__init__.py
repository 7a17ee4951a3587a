"""The command line: click commands that parse, call one service, and print."""

import importlib
import re

import click

from cluster_tools.cli.app import cli
from cluster_tools.cli.startup import defer_invoke, freeze_at_exit

defer_invoke()  # before anything imports paramiko

# The command modules. Importing one registers its commands on `cli` (its @cli.command decorators run then);
# nothing else is taken from them, so they are imported by name, after defer_invoke.
COMMAND_MODULES = (
    "autostop_cmds",
    "aws_cmds",
    "bootstrap_cmds",
    "cluster_cmds",
    "cluster_config_cmds",
    "cost_cmds",
    "interactive_cmds",
    "project_cmds",
    "report_cmds",
    "results_cmds",
    "run_cmds",
    "sandbox_cmds",
    "submit_cmds",
    "triage_cmds",
    "update_cmds",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(help_text: str) -> str:
    """A command's summary for the command lists: its help's first sentence, whole (click would cut it at
    a width, mid-word, with "...")."""
    paragraph = " ".join(help_text.split("\n\n")[0].split())
    sentence = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    return sentence.rstrip(":;")


def _whole_summaries(command: click.Command) -> None:
    if command.help and not command.short_help:
        command.short_help = first_sentence(command.help)
    for sub in getattr(command, "commands", {}).values():
        _whole_summaries(sub)


_whole_summaries(cli)


def main() -> None:
    try:
        cli(prog_name="clustertools")
    finally:
        freeze_at_exit()
