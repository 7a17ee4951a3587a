"""What several command modules share: the local terminal, the note of a host key pinned on first use, and how a
node bootstrap's run is reported. Command modules import from here, never from one another."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from cluster_tools.cli.app import App, CliError, note

if TYPE_CHECKING:
    from cluster_tools.transport.ssh_session import LocalTerminal


def local_terminal(app: App) -> LocalTerminal:
    """This process's terminal for an interactive session (`ssh`, `debug`), its output flushed first."""
    from cluster_tools.transport.ssh_session import LocalTerminal

    sys.stdout.flush()
    sys.stderr.flush()
    return LocalTerminal(term=app.environ.get("TERM") or "xterm-256color")


def announce_host_key(host: str, key: str) -> None:
    note(f"first contact with {host}: pinned its host key {key} (check it with the cluster's admin)")


def report_bootstrap_run(result: Any, cluster: str, *, dry_run: bool, where: str) -> None:
    """Notes, then what a dry run would run, or how the run ended (a failure as one error naming its step)."""
    for line in result.notes:
        note(f"note: {line}")
    if dry_run:
        click.echo(f"would run on {where}: {result.command}")
        return
    outcome = result.outcome
    if result.exit_code != 0:
        if outcome is not None and outcome.failed_step:
            code = outcome.exit_code if outcome.exit_code is not None else result.exit_code
            what = f"at step {outcome.failed_step} (exit {code})"
        else:
            what = f"(exit {result.exit_code})" + (
                f": {outcome.error}" if outcome is not None and outcome.error else ""
            )
        raise CliError(f"node bootstrap failed {what} (hint: clustertools triage -c {cluster})")
    if outcome is not None and outcome.nothing_to_do:
        note("node bootstrap: nothing to do, every step was already done (no-op)")
    else:
        note(
            "node bootstrap finished OK"
            + (f": ran {', '.join(outcome.steps_run)}" if outcome and outcome.steps_run else "")
        )
