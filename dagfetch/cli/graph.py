"""Commands of the graph store: ``graph``, ``runs``, ``errors`` and ``db``. Exit codes are the
CLI's: 3 when a DAG, version or run is not in the store. Which database the commands open:
:mod:`dagfetch.cli.graph_store`; the graph side of ``sync --extract``: :mod:`dagfetch.cli.sync`.

Each command imports what it reads (rendering, the schema's revision) when it runs, so that
loading this module costs nothing beyond click.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import click

from dagfetch.cli.app import (
    State,
    chosen_format,
    emit,
    format_options,
    json_option,
    pass_state,
)
from dagfetch.cli.graph_store import (
    graph_errors,
    open_store,
    pipeline_for,
    store_options,
)

if TYPE_CHECKING:
    from dagfetch.graphs import RunPin

# the formats of dagfetch.graphs.render, named here so that --help does not import it
GRAPH_FORMATS = ("text", "json", "dot", "mermaid")


# -- graph ------------------------------------------------------------------------------------

@click.group("graph")
def graph_group() -> None:
    """DAG graphs recorded in the graph store."""


@graph_group.command("list")
@store_options
@json_option
@pass_state
def graph_list(state: State, database: str | None, prefix: str, as_json: bool) -> None:
    """Every DAG with its latest graph version."""
    with graph_errors(state):
        rows = open_store(state, database, prefix).latest_all()

    def text() -> None:
        if not rows:
            click.echo("no DAGs recorded yet (dagfetch sync --extract records them)")
        for v in rows:
            click.echo(f"{v.dag_id}  version {v.number}  {v.task_count} tasks, "
                       f"{v.edge_count} edges  {v.created_at:%Y-%m-%d %H:%M:%S}Z")

    emit(as_json, [v.to_json() for v in rows], text)


@graph_group.command("show")
@click.argument("dag")
@click.option("--version", "number", type=int, help="Version number (default: latest).")
@format_options(GRAPH_FORMATS)
@store_options
@pass_state
def graph_show(state: State, dag: str, number: int | None, fmt: str, as_json: bool,
               database: str | None, prefix: str) -> None:
    """The graph of DAG: tasks and their downstream tasks."""
    from dagfetch.graphs.render import render

    fmt = chosen_format(fmt, as_json)
    with graph_errors(state):
        store = open_store(state, database, prefix)
        version = store.version(dag, number)
        graph = store.graph(dag, version.number)
    click.echo(render(graph, version, fmt))


@graph_group.command("history")
@click.argument("dag")
@store_options
@json_option
@pass_state
def graph_history(state: State, dag: str, database: str | None, prefix: str,
                  as_json: bool) -> None:
    """Every stored graph version of DAG, oldest first."""
    with graph_errors(state):
        store = open_store(state, database, prefix)
        versions = store.history(dag)
        sources = {v.number: store.sources(dag, v.number) for v in versions}

    def text() -> None:
        for v in versions:
            mark = "  (latest)" if v.latest else ""
            src = sources[v.number]
            origin = (f"  from {src[0].repo_id}@{src[0].version_id[:12]}:{src[0].path}"
                      + (f" (+{len(src) - 1} more)" if len(src) > 1 else "")) if src else ""
            click.echo(f"{v.number}  {v.created_at:%Y-%m-%d %H:%M:%S}Z  {v.task_count} tasks, "
                       f"{v.edge_count} edges{origin}{mark}")

    emit(as_json, [{**v.to_json(), "sources": [attrs.asdict(s) for s in sources[v.number]]}
                   for v in versions], text)


@graph_group.command("diff")
@click.argument("dag")
@click.argument("old", type=int)
@click.argument("new", type=int)
@store_options
@json_option
@pass_state
def graph_diff(state: State, dag: str, old: int, new: int, database: str | None, prefix: str,
               as_json: bool) -> None:
    """What changed in DAG from version OLD to version NEW."""
    from dagfetch.graphs.render import diff_text

    with graph_errors(state):
        d = open_store(state, database, prefix).diff(dag, old, new)
    emit(as_json, d.to_json(), lambda: click.echo(diff_text(dag, old, new, d)))


@graph_group.command("gc")
@click.option("--keep", default=5, show_default=True, type=click.IntRange(min=1),
              help="Newest versions of each DAG to keep.")
@click.option("--dry-run", is_flag=True, help="Say what would go, remove nothing.")
@store_options
@json_option
@pass_state
def graph_gc(state: State, keep: int, dry_run: bool, database: str | None, prefix: str,
             as_json: bool) -> None:
    """Remove graph versions no run is pinned to that are neither latest nor among the newest
    KEEP of their DAG."""
    with graph_errors(state):
        result = open_store(state, database, prefix).gc(keep, dry_run=dry_run)

    def text() -> None:
        verb = "would remove" if dry_run else "removed"
        for dag_id, number in result.removed:
            click.echo(f"{verb} {dag_id} version {number}")
        click.echo(f"{len(result.removed)} graph versions {verb}")

    emit(as_json, {"removed": [list(r) for r in result.removed], "dry_run": dry_run}, text)


# -- runs -------------------------------------------------------------------------------------

@click.group("runs")
def runs_group() -> None:
    """Runs pinned to a graph version and a code version."""


@runs_group.command("pin")
@click.argument("run")
@click.argument("dag")
@click.option("--version", "number", type=int, help="Graph version (default: latest).")
@store_options
@json_option
@pass_state
def runs_pin(state: State, run: str, dag: str, number: int | None, database: str | None,
             prefix: str, as_json: bool) -> None:
    """Pin RUN of DAG to a graph version, and keep its code in the cache."""
    with graph_errors(state):
        pin = pipeline_for(state, database, prefix).pin_run(run, dag, number=number)
    emit(as_json, pin.to_json(), lambda: _echo_pin(pin))


@runs_group.command("show")
@click.argument("run")
@click.option("--dag", help="The DAG, when RUN exists in several.")
@format_options(GRAPH_FORMATS)
@store_options
@pass_state
def runs_show(state: State, run: str, dag: str | None, fmt: str, as_json: bool,
              database: str | None, prefix: str) -> None:
    """The pin of RUN and the graph it runs."""
    from dagfetch.graphs.render import render

    fmt = chosen_format(fmt, as_json)
    with graph_errors(state):
        store = open_store(state, database, prefix)
        pin = store.run(run, dag)
        graph = store.run_graph(run, pin.dag_id)
    if fmt == "json":
        emit(True, {**pin.to_json(), "graph": graph.to_json()}, lambda: None)
        return
    if fmt == "text":
        _echo_pin(pin)
    click.echo(render(graph, pin.version, fmt))


def _echo_pin(pin: RunPin) -> None:
    src = pin.source
    code = f"{src.repo_id}@{src.version_id}:{src.path}" if src else "(no source version)"
    click.echo(f"run {pin.run_id} of {pin.dag_id}: graph version {pin.version.number}, "
               f"code {code}, pinned {pin.pinned_at:%Y-%m-%d %H:%M:%S}Z")


# -- errors and db ----------------------------------------------------------------------------

@click.command("errors")
@click.argument("repo", required=False)
@click.option("--version", "version_id", help="A source version (default: the newest extracted).")
@store_options
@json_option
@pass_state
def errors_command(state: State, repo: str | None, version_id: str | None,
                   database: str | None, prefix: str, as_json: bool) -> None:
    """DAG files that failed to import, with their tracebacks."""
    with graph_errors(state):
        rows = open_store(state, database, prefix).import_errors(repo, version_id)

    def text() -> None:
        if not rows:
            click.echo("no import errors")
        for e in rows:
            click.echo(f"{e.repo_id}@{e.version_id[:12]}  {e.path}")
            for line in e.message.rstrip().splitlines():
                click.echo(f"    {line}")

    emit(as_json, [attrs.asdict(e) for e in rows], text)


@click.group("db")
def db_group() -> None:
    """The graph store's database schema."""


@db_group.command("upgrade")
@store_options
@json_option
@pass_state
def db_upgrade(state: State, database: str | None, prefix: str, as_json: bool) -> None:
    """Create or migrate the graph store's tables to the newest schema."""
    from dagfetch.graphs.database import describe, head_revision

    with graph_errors(state):
        store = open_store(state, database, prefix, upgrade=True)
        store.close()
    data = {"database": describe(store.url), "prefix": prefix,
            "revision": head_revision()}
    emit(as_json, data, lambda: click.echo(
        f"{data['database']}: graph store (prefix {data['prefix']!r}) is at schema "
        f"{data['revision']}"))


COMMANDS: tuple[click.Command, ...] = (graph_group, runs_group, errors_command, db_group)
