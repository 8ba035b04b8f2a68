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
    complete_repo_ids,
    emit,
    format_options,
    json_option,
    pass_state,
)
from dagfetch.cli.graph_store import (
    complete_dag_ids,
    graph_errors,
    open_store,
    pipeline_for,
    store_options,
)

if TYPE_CHECKING:
    from dagfetch.graphs import GraphVersion, RunPin

# the formats of dagfetch.graphs.render, named here so that --help does not import it
GRAPH_FORMATS = ("text", "json", "dot", "mermaid")


# -- graph ------------------------------------------------------------------------------------

@click.group("graph")
def graph_group() -> None:
    """DAG graphs recorded in the graph store."""


@graph_group.command("list")
@click.option("--all", "show_all", is_flag=True,
              help="Also the inactive DAGs: those their repository no longer defines.")
@store_options
@json_option
@pass_state
def graph_list(state: State, show_all: bool, database: str | None, prefix: str,
               as_json: bool) -> None:
    """Every active DAG with its latest graph version (--all: inactive DAGs too)."""
    with graph_errors(state):
        rows = open_store(state, database, prefix).latest_all(include_inactive=show_all)

    def text() -> None:
        if not rows:
            click.echo("no DAGs recorded yet (dagfetch sync --extract records them)"
                       if show_all else "no active DAGs (--all shows inactive ones)")
        for v in rows:
            click.echo(f"{v.dag_id}  version {v.number}  {v.task_count} tasks, "
                       f"{v.edge_count} edges  {v.created_at:%Y-%m-%d %H:%M:%S}Z"
                       f"{_inactive_note(v)}")

    emit(as_json, [v.to_json() for v in rows], text)


def _inactive_note(version: GraphVersion) -> str:
    where = version.vanished_in
    if where is None:
        return ""
    was = f", was in {where.path}" if where.path else ""
    return f"  (inactive: gone from {where.repo_id}@{where.version_id[:12]}{was})"


@graph_group.command("check")
@click.argument("repo", required=False, shell_complete=complete_repo_ids)
@click.option("--window", default=10, show_default=True, type=click.IntRange(min=2),
              help="Newest extractions of each repository to look at.")
@store_options
@json_option
@pass_state
def graph_check(state: State, repo: str | None, window: int, database: str | None,
                prefix: str, as_json: bool) -> None:
    """DAGs whose graph changes on almost every extraction while their file does not (task
    ids from the clock, a random order), naming what keeps changing."""
    with graph_errors(state):
        found = open_store(state, database, prefix).unstable_dags(repo, window=window)

    def text() -> None:
        if not found:
            click.echo("no unstable DAGs")
        for item in found:
            click.echo(item.describe())

    emit(as_json, [item.to_json() for item in found], text)


@graph_group.command("show")
@click.argument("dag", shell_complete=complete_dag_ids)
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
@click.argument("dag", shell_complete=complete_dag_ids)
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
            mark = ("  (latest)" if v.latest else "") + (_inactive_note(v) if v.latest else "")
            src = sources[v.number]
            origin = (f"  from {src[0].repo_id}@{src[0].version_id[:12]}:{src[0].path}"
                      + (f" (+{len(src) - 1} more)" if len(src) > 1 else "")) if src else ""
            click.echo(f"{v.number}  {v.created_at:%Y-%m-%d %H:%M:%S}Z  {v.task_count} tasks, "
                       f"{v.edge_count} edges{origin}{mark}")

    emit(as_json, [{**v.to_json(), "sources": [attrs.asdict(s) for s in sources[v.number]]}
                   for v in versions], text)


@graph_group.command("diff")
@click.argument("dag", shell_complete=complete_dag_ids)
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
@click.option("--keep-sources", default=10, show_default=True, type=click.IntRange(min=1),
              help="Newest extractions of each repository whose import errors, source links "
                   "and vanished DAGs to keep.")
@click.option("--dry-run", is_flag=True, help="Say what would go, remove nothing.")
@store_options
@json_option
@pass_state
def graph_gc(state: State, keep: int, keep_sources: int, dry_run: bool, database: str | None,
             prefix: str, as_json: bool) -> None:
    """Remove graph versions no run is pinned to that are neither latest nor among the newest
    KEEP of their DAG; the import errors and source links of code versions beyond each
    repository's newest KEEP_SOURCES extractions that no run pins and this cache no longer
    keeps; and the unpinned graphs of DAGs that became inactive beyond that window."""
    with graph_errors(state):
        store = open_store(state, database, prefix)
        kept = _kept_by_cache(state)
        result = store.gc(keep, keep_sources=keep_sources, kept_sources=kept, dry_run=dry_run)

    def text() -> None:
        verb = "would remove" if dry_run else "removed"
        for dag_id, number in result.removed:
            click.echo(f"{verb} {dag_id} version {number}")
        for repo_id, version_id in result.source_versions:
            click.echo(f"{verb} source version {repo_id}@{version_id}")
        for dag_id in result.forgotten:
            click.echo(f"{verb} inactive DAG {dag_id}")
        click.echo(f"{len(result.removed)} graph versions, {len(result.source_versions)} source "
                   f"versions ({result.import_errors} import errors, {result.links} links), "
                   f"{len(result.forgotten)} inactive DAGs {verb}")

    emit(as_json, result.to_json(), text)


def _kept_by_cache(state: State) -> dict[str, set[str]] | None:
    """What this node's cache keeps, when there is a manifest (without one, the window
    alone decides)."""
    from dagfetch.errors import ManifestError
    from dagfetch.graphs.pipeline import GraphPipeline

    try:
        workspace = state.workspace
    except ManifestError:
        if state.manifest:
            raise
        return None
    return GraphPipeline.kept_by(workspace)


# -- runs -------------------------------------------------------------------------------------

@click.group("runs")
def runs_group() -> None:
    """Runs pinned to a graph version and a code version."""


@runs_group.command("pin")
@click.argument("run")
@click.argument("dag", shell_complete=complete_dag_ids)
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
@click.option("--dag", shell_complete=complete_dag_ids, help="The DAG, when RUN exists in several.")
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


@runs_group.command("list")
@click.option("--dag", shell_complete=complete_dag_ids, help="Only the runs of this DAG.")
@store_options
@json_option
@pass_state
def runs_list(state: State, dag: str | None, database: str | None, prefix: str,
              as_json: bool) -> None:
    """Every pinned run, newest first, released ones included."""
    with graph_errors(state):
        pins = open_store(state, database, prefix).runs(dag)

    def text() -> None:
        if not pins:
            click.echo("no runs pinned" + (f" for DAG {dag!r}" if dag else ""))
        for pin in pins:
            _echo_pin(pin)

    emit(as_json, [pin.to_json() for pin in pins], text)


@runs_group.command("release")
@click.argument("run")
@click.option("--dag", shell_complete=complete_dag_ids, help="The DAG, when RUN exists in several.")
@store_options
@json_option
@pass_state
def runs_release(state: State, run: str, dag: str | None, database: str | None, prefix: str,
                 as_json: bool) -> None:
    """Release RUN: its graph pin stays as history, and this cache may evict its code."""
    from dagfetch.errors import ManifestError

    with graph_errors(state):
        try:
            pipeline = pipeline_for(state, database, prefix)
        except ManifestError:
            if state.manifest or database is None:
                raise
            # a database named without a manifest: no cache here holds the run's code
            pin, unpinned = open_store(state, database, prefix).release_run(run, dag), False
        else:
            unpinned = pipeline.release_run(run, dag)
            pin = pipeline.store.run(run, dag)

    def text() -> None:
        code = "; its code may now be evicted from this cache" if unpinned else ""
        click.echo(f"run {pin.run_id} of {pin.dag_id} released{code}")

    emit(as_json, {**pin.to_json(), "unpinned": unpinned}, text)


def _echo_pin(pin: RunPin) -> None:
    src = pin.source
    code = f"{src.repo_id}@{src.version_id}:{src.path}" if src else "(no source version)"
    released = (f", released {pin.released_at:%Y-%m-%d %H:%M:%S}Z" if pin.released_at
                else "")
    click.echo(f"run {pin.run_id} of {pin.dag_id}: graph version {pin.version.number}, "
               f"code {code}, pinned {pin.pinned_at:%Y-%m-%d %H:%M:%S}Z{released}")


# -- errors and db ----------------------------------------------------------------------------

@click.command("errors")
@click.argument("repo", required=False, shell_complete=complete_repo_ids)
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
