"""The root command: global options, the shared context, and the one place errors become a line.

Command modules import only click and light modules at import time: `clustertools --help` must not
pay for boto3, paramiko or pcluster (they are imported inside the services that use them).
"""

from __future__ import annotations

import errno
import os
import select
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from cluster_tools import __version__
from cluster_tools.errors import ClusterToolsError

SECTIONS = (
    ("Start here", ("init", "sandbox")),
    ("Clusters", ("list", "register", "forget", "ssh", "ssh-config", "put", "get", "triage", "start", "down")),
    ("Runs", ("submit", "status", "logs", "cancel", "runs", "resubmit", "debug", "report")),
    ("Results", ("results",)),
    ("Cost", ("cost", "autostop")),
    ("AWS", ("validate", "render", "up", "describe")),
)


@dataclass
class App:
    """What every command gets: where state lives, which project, debug or not. No globals."""

    state_root: Path
    project_file: Path | None
    debug: bool
    environ: dict[str, str] = field(default_factory=dict)
    _project: Any = None

    @property
    def state(self):  # -> StateDir
        from cluster_tools.store.state_dir import StateDir

        return StateDir(self.state_root)

    def project(self):  # -> Project | None
        """The project file's model, when there is one (loaded once, validated)."""
        if self._project is None and self.project_file is not None:
            from cluster_tools.model.project.project_config import load_project

            self._project = load_project(self.project_file)
        return self._project

    def cluster(self, explicit: str | None):  # -> ClusterRecord
        from cluster_tools.store.cluster_store import load_cluster, resolve_cluster_name

        project = self.project()
        name = resolve_cluster_name(self.state, explicit, project.cluster if project else None)
        return load_cluster(self.state, name)

    def run(self, run_id: str | None):  # -> cluster_tools.api.run_api.Run
        """A run by id (any unique start), else the project's latest: the API's Run, which the run commands call."""
        from cluster_tools.api.run_api import Run
        from cluster_tools.services.remote.cluster_shell import connect

        project = self.project() if run_id is None else None  # a run id needs no project file read
        return Run.open(self.state, run_id, project.name if project else None, connect=connect, warn=note)


class CliError(click.ClickException):
    """Prints ``Error: <message> (hint: ...)`` on one line to stderr."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click types it a ClassVar, yet exits with the instance's


class RootGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ClusterToolsError as exc:
            if _debug(ctx):
                raise
            raise CliError(exc.one_line(), exc.exit_code) from None
        except KeyboardInterrupt:
            if _debug(ctx):
                raise
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:  # a bug of ours: one line, the traceback with --debug
            if _debug(ctx) or _broken_pipe(exc):
                raise  # the reader of stdout went away (`| head`): click exits 1 quietly, as CLI tools do
            raise CliError(
                f"unexpected {type(exc).__name__}: {exc} (hint: rerun with --debug for the traceback, and report it)"
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed: set[str] = set()
        for title, names in SECTIONS:
            rows = [(n, self.commands[n].get_short_help_str(70)) for n in names if n in self.commands]
            listed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [(n, c.get_short_help_str(70)) for n, c in sorted(self.commands.items()) if n not in listed]
        if rest:
            with formatter.section("Other commands"):
                formatter.write_dl(rest)


def _broken_pipe(exc: BaseException) -> bool:
    """EPIPE on our stdout (its reader closed), not on a socket to a cluster, which is an error to report."""
    if not (isinstance(exc, OSError) and exc.errno == errno.EPIPE):
        return False
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        return False


def _debug(ctx: click.Context) -> bool:
    app = ctx.find_object(App)
    return bool(app and app.debug)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="clustertools")
@click.option("--debug", is_flag=True, envvar="CLUSTERTOOLS_DEBUG", help="Show tracebacks on errors.")
@click.option(
    "--project",
    "project_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The project file (default: the nearest clustertools.yaml here or above).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, project_file: Path | None) -> None:
    """Run one job per subject over thousands of subjects on a Slurm cluster: AWS ParallelCluster,
    an existing cluster reached over SSH, or the local sandbox.

    \b
    First steps, no AWS account needed:
      clustertools init my-study && cd my-study
      clustertools sandbox up
      clustertools ssh -- sinfo
      clustertools sandbox down
    """
    from cluster_tools.model.project.project_file import find_project_file
    from cluster_tools.store.state_dir import default_state_dir

    environ = dict(os.environ)
    if project_file is None:
        project_file = find_project_file(Path.cwd())
    elif not project_file.is_file():
        raise CliError(f"project file {project_file} does not exist (hint: create one with `clustertools init`)")
    ctx.obj = App(state_root=default_state_dir(environ), project_file=project_file, debug=debug, environ=environ)


def note(message: str) -> None:
    """A progress or side note for a person: stderr, so stdout stays clean for --json and pipes."""
    click.echo(message, err=True)
