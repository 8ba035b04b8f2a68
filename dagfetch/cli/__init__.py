"""The ``dagfetch`` command: the same main jobs as the Python API.

This module only assembles the command group; the commands live in their modules, each with
a ``COMMANDS`` tuple, and share the plumbing of :mod:`dagfetch.cli.app` (state, errors as exit
codes, output; the exit codes are listed there):

- :mod:`dagfetch.cli.manifest`: ``validate``, ``init``
- :mod:`dagfetch.cli.cache`: ``status``, ``versions``, ``path``, ``pin``, ``unpin``, ``gc``,
  ``plugins``
- :mod:`dagfetch.cli.sync`: ``sync`` (and its graph side, ``--extract/--publish/--follow``)
- :mod:`dagfetch.cli.graph`: ``graph``, ``runs``, ``errors``, ``db``
- :mod:`dagfetch.cli.diff`: ``diff`` (what changed in the code between two versions)
- :mod:`dagfetch.cli.serve`: ``serve`` (the web server, with the ``web`` extra)

A command imports the heavy modules it needs (the graph store, backends, progress bars) when
it runs, so ``dagfetch --help`` and ``--version`` load none of them.
"""

from __future__ import annotations

import click

from dagfetch.cli import cache, diff, graph, serve, sync
from dagfetch.cli import manifest as manifest_commands
from dagfetch.cli.app import State
from dagfetch.cli.logs import LEVEL_NAMES
from dagfetch.cli.logs import configure as configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.version_option(package_name="dagfetch")
@click.pass_context
def main(
    ctx: click.Context, manifest: str | None, home: str | None, verbose: int, quiet: bool,
    log_level: str | None, debug: bool,
) -> None:
    """Fetch DAG code from remote repositories into a versioned local cache."""
    configure_logging(verbose, quiet, log_level)
    ctx.obj = State(manifest, home, debug)


for _command in (*manifest_commands.COMMANDS, *cache.COMMANDS, *sync.COMMANDS, *graph.COMMANDS,
                 *diff.COMMANDS, *serve.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]


if __name__ == "__main__":  # pragma: no cover
    main()
