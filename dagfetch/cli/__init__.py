"""The ``dagfetch`` command: the same main jobs as the Python API.

This module only assembles the command group; the commands live in their modules, each with
a ``COMMANDS`` tuple, and share the plumbing of :mod:`dagfetch.cli.app` (state, errors as exit
codes, output; the exit codes are listed there):

- :mod:`dagfetch.cli.cache`: ``status``, ``versions``, ``path``, ``pin``, ``unpin``, ``gc``,
  ``verify``, ``plugins``
- :mod:`dagfetch.cli.sync`: ``sync`` (and its graph side, ``--extract/--publish/--follow``)
- :mod:`dagfetch.cli.graph`: ``graph``, ``runs``, ``errors``, ``db``
- :mod:`dagfetch.cli.diff`: ``diff`` (what changed in the code between two versions)
- :mod:`dagfetch.cli.serve`: ``serve`` (the web server, with the ``web`` extra)

A command imports the heavy modules it needs (the graph store, backends, progress bars) when
it runs, so ``dagfetch --help`` and ``--version`` load none of them.
"""

from __future__ import annotations

import logging

import click

from dagfetch.cli import cache, diff, graph, serve, sync
from dagfetch.cli.app import State


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
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug logs).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="dagfetch")
@click.pass_context
def main(
    ctx: click.Context, manifest: str | None, home: str | None, verbose: int, debug: bool
) -> None:
    """Fetch DAG code from remote repositories into a versioned local cache."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = State(manifest, home, debug)


for _command in (*cache.COMMANDS, *sync.COMMANDS, *graph.COMMANDS, *diff.COMMANDS,
                 *serve.COMMANDS):
    main.add_command(_command)

__all__ = ["main"]


if __name__ == "__main__":  # pragma: no cover
    main()
