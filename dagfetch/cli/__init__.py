"""The ``dagfetch`` command: the same main jobs as the Python API.

This module only assembles the command group; the commands live in their modules, each with
a ``COMMANDS`` tuple, and share the plumbing of :mod:`dagfetch.cli.app` (state, errors as exit
codes, output; the exit codes are listed there):

- :mod:`dagfetch.cli.manifest`: ``validate``, ``init``
- :mod:`dagfetch.cli.cache`: ``status``, ``versions``, ``path``, ``pin``, ``unpin``, ``gc``,
  ``verify``, ``plugins``
- :mod:`dagfetch.cli.sync`: ``sync`` (and its graph side, ``--extract/--publish/--follow``)
- :mod:`dagfetch.cli.graph`: ``graph``, ``runs``, ``errors``, ``db``
- :mod:`dagfetch.cli.diff`: ``diff`` (what changed in the code between two versions)
- :mod:`dagfetch.cli.serve`: ``serve`` (the web server, with the ``web`` extra)

Command modules are imported when their command is asked for (:class:`LazyGroup`, from
:data:`COMMAND_MODULES`), and a command imports the heavy modules it needs (the graph store,
backends, progress bars) when it runs: ``dagfetch sync`` loads neither the graph store's
commands nor SQLAlchemy and Alembic, and ``dagfetch --version`` no command module at all.
"""

from __future__ import annotations

import importlib

import click

from dagfetch import __version__
from dagfetch.cli.app import LEVEL_NAMES, State

# command name -> the module defining it (in that module's COMMANDS), in the order --help lists
COMMAND_MODULES: dict[str, str] = {
    "init": "manifest", "validate": "manifest",
    "sync": "sync",
    "status": "cache", "versions": "cache", "path": "cache", "pin": "cache", "unpin": "cache",
    "gc": "cache", "verify": "cache", "plugins": "cache",
    "diff": "diff",
    "graph": "graph", "runs": "graph", "errors": "graph", "db": "graph",
    "serve": "serve",
}


class LazyGroup(click.Group):
    """Imports a command's module when the command is asked for (run, helped, completed)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMAND_MODULES, *(n for n in super().list_commands(ctx)
                                    if n not in COMMAND_MODULES)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        commands: tuple[click.Command, ...] = importlib.import_module(
            f"dagfetch.cli.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--manifest",
    "-m",
    envvar="DAGFETCH_MANIFEST",
    type=click.Path(dir_okay=False),
    help="Manifest file (default: dagfetch.toml or dagfetch.json here).",
)
@click.option(
    "--home",
    envvar="DAGFETCH_HOME",
    type=click.Path(file_okay=False),
    help="Cache root (default: $DAGFETCH_HOME or the per-user cache folder).",
)
@click.option("-v", "--verbose", count=True,
              help="-v: dagfetch's debug lines; -vv: every library's debug logs too.")
@click.option("-q", "--quiet", is_flag=True, help="Log errors only.")
@click.option(
    "--log-level",
    envvar="DAGFETCH_LOG_LEVEL",
    type=click.Choice(LEVEL_NAMES, case_sensitive=False),
    help="dagfetch's log level (default WARNING; -v is DEBUG, -q ERROR).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
# the version from the package itself: asking the installed metadata costs importlib.metadata
@click.version_option(version=__version__, prog_name="dagfetch")
@click.pass_context
def main(
    ctx: click.Context, manifest: str | None, home: str | None, verbose: int, quiet: bool,
    log_level: str | None, debug: bool,
) -> None:
    """Fetch DAG code from remote repositories into a versioned local cache."""
    from dagfetch.cli.logs import configure as configure_logging  # not for --help, --version

    configure_logging(verbose, quiet, log_level)
    ctx.obj = State(manifest, home, debug)


__all__ = ["COMMAND_MODULES", "LazyGroup", "main"]


if __name__ == "__main__":  # pragma: no cover
    main()
