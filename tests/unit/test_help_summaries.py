"""Every command list in --help shows each command's first sentence whole: never cut mid-word with "..."."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cluster_tools.cli import cli


def groups(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        yield path
        for name, sub in command.commands.items():
            yield from groups(sub, (*path, name))


@pytest.mark.parametrize("path", list(groups(cli)), ids=lambda p: " ".join(p) or "clustertools")
def test_command_summaries_are_whole_sentences(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    cut = [line for line in result.output.splitlines() if line.rstrip().endswith("...") and "Usage:" not in line]
    assert cut == [], cut
