"""Commands of the graph store: ``graph``, ``runs``, ``errors``, ``db``, and the graph side of
``sync --extract / --publish / --follow``.

The database is ``--database`` (or ``$DAGFETCH_DATABASE``), else the manifest's ``database``,
else the SQLite file under the cache root. Exit codes are the CLI's: 3 when a DAG, version or
run is not in the store.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import click

from dagfetch.cli import (
    EXIT_NOT_FOUND,
    EXIT_SYNC_FAILED,
    State,
    emit,
    errors_as_exit_codes,
    fail,
    json_option,
    pass_state,
)
from dagfetch.errors import ManifestError
from dagfetch.graphs.errors import GraphNotFoundError
from dagfetch.graphs.schema import DEFAULT_PREFIX

F = TypeVar("F", bound=Callable[..., Any])


class StoreOptions:
    def __init__(self, database: str | None, prefix: str) -> None:
        self.database = database
        self.prefix = prefix


def store_options(f: F) -> F:
    f = click.option("--database", envvar="DAGFETCH_DATABASE",
                     help="SQLAlchemy URL of the graph store (default: the manifest's "
                          "`database`, else a SQLite file under the cache root).")(f)
    f = click.option("--table-prefix", "prefix", envvar="DAGFETCH_TABLE_PREFIX",
                     default=DEFAULT_PREFIX, show_default=True,
                     help="Prefix of the store's table names.")(f)
    return f


@contextmanager
def graph_errors(state: State) -> Iterator[None]:
    with errors_as_exit_codes(state):
        try:
            yield
        except GraphNotFoundError as exc:
            if state.debug:
                raise
            fail(str(exc), EXIT_NOT_FOUND)


def open_store(state: State, database: str | None, prefix: str, *, upgrade: bool = False) -> Any:
    """The store the options name. Reading commands never change the schema: an old one is
    reported with the `db upgrade` hint (the default SQLite file is created on first use)."""
    from dagfetch.cache.layout import default_cache_root
    from dagfetch.graphs.database import default_url
    from dagfetch.graphs.store import GraphStore

    url = database
    if url is None:
        try:
            ws = state.workspace
            url = ws.manifest.database or default_url(ws.cache.root)
        except ManifestError:
            if state.manifest:  # a manifest was named and is wrong: say so
                raise
            root = state.home if state.home else default_cache_root()
            url = default_url(root)
    is_default_sqlite = database is None and url.startswith("sqlite:")
    return GraphStore(url, prefix=prefix, upgrade=upgrade or is_default_sqlite)


def pipeline_for(state: State, database: str | None, prefix: str) -> Any:
    from dagfetch.graphs.pipeline import GraphPipeline

    ws = state.workspace
    url = database or ws.manifest.database
    store = open_store(state, url, prefix, upgrade=url is None)
    return GraphPipeline(ws, store)


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


format_option = click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
    show_default=True, help="How to print the graph.",
)


@graph_group.command("show")
@click.argument("dag")
@click.option("--version", "number", type=int, help="Version number (default: latest).")
@format_option
@store_options
@pass_state
def graph_show(state: State, dag: str, number: int | None, fmt: str, database: str | None,
               prefix: str) -> None:
    """The graph of DAG: tasks and their downstream tasks."""
    from dagfetch.graphs.render import render

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
@format_option
@store_options
@pass_state
def runs_show(state: State, run: str, dag: str | None, fmt: str, database: str | None,
              prefix: str) -> None:
    """The pin of RUN and the graph it runs."""
    from dagfetch.graphs.render import render

    with graph_errors(state):
        store = open_store(state, database, prefix)
        pin = store.run(run, dag)
        graph = store.run_graph(run, pin.dag_id)
    if fmt == "json":
        click.echo(json.dumps({**pin.to_json(), "graph": graph.to_json()}, indent=2,
                              sort_keys=True))
        return
    if fmt == "text":
        _echo_pin(pin)
    click.echo(render(graph, pin.version, fmt))


def _echo_pin(pin: Any) -> None:
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
@pass_state
def db_upgrade(state: State, database: str | None, prefix: str) -> None:
    """Create or migrate the graph store's tables to the newest schema."""
    from dagfetch.graphs.database import describe, head_revision

    with graph_errors(state):
        store = open_store(state, database, prefix, upgrade=True)
        store.close()
    click.echo(f"{describe(store.url)}: graph store (prefix {prefix!r}) is at schema "
               f"{head_revision()}")


# -- sync --extract / --publish / --follow ----------------------------------------------------

def pipeline_sync(
    state: State,
    repos: Sequence[str] | None,
    *,
    publish: bool,
    follow: bool,
    watch: bool,
    as_json: bool,
    observer: Any = None,
) -> None:
    """The graph side of ``dagfetch sync``: sync then extract (and publish), or follow."""
    import threading

    database = os.environ.get("DAGFETCH_DATABASE")
    prefix = os.environ.get("DAGFETCH_TABLE_PREFIX", DEFAULT_PREFIX)
    with graph_errors(state):
        pipeline = pipeline_for(state, database, prefix)
        if watch:
            stop = threading.Event()
            try:
                pipeline.watch(stop=stop, publish=publish, follow=follow, observer=observer,
                               on_outcomes=lambda outs: _print_outcomes(outs, as_json))
            except KeyboardInterrupt:
                stop.set()
            return
        if follow:
            outcomes = pipeline.follow(repos)
        else:
            outcomes = pipeline.sync(repos, publish=publish, observer=observer)
    _print_outcomes(outcomes, as_json)
    if any(not o.ok for o in outcomes):
        sys.exit(EXIT_SYNC_FAILED)


def _print_outcomes(outcomes: Sequence[Any], as_json: bool) -> None:
    def as_dict(o: Any) -> dict[str, Any]:
        ex = o.extraction
        return {
            "repo_id": o.repo_id, "version_id": o.version_id, "error": o.error,
            "changed": bool(o.sync and o.sync.changed), "extracted": o.extracted,
            "dags": len(ex.results) if ex else 0,
            "new_graph_versions": sum(r.created for r in ex.results) if ex else 0,
            "import_errors": len(ex.errors) if ex else 0,
            "published": o.published, "followed": o.followed,
        }

    def text() -> None:
        for o in outcomes:
            d = as_dict(o)
            if o.error:
                click.echo(f"{o.repo_id}: FAILED: {o.error}")
                continue
            parts = [f"{o.repo_id}: at {o.version_id}"]
            if o.followed:
                parts.append("(followed the published version)")
            if o.extracted:
                parts.append(f"{d['dags']} DAGs, {d['new_graph_versions']} new graph versions, "
                             f"{d['import_errors']} import errors")
            elif o.extraction is not None:
                parts.append("(graphs recorded before)")
            if o.published:
                parts.append("published")
            click.echo("  ".join(parts))

    emit(as_json, [as_dict(o) for o in outcomes], text)


def register(main: click.Group) -> None:
    """Called by :mod:`dagfetch.cli` to add these commands."""
    for command in (graph_group, runs_group, errors_command, db_group):
        main.add_command(command)
