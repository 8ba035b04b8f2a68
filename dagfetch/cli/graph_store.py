"""The graph store as the commands reach it: the ``--database`` / ``--table-prefix`` options,
which database they name, and graph-store errors as exit codes. Shared by the graph commands
(:mod:`dagfetch.cli.graph`) and the graph side of ``sync`` (:mod:`dagfetch.cli.sync`).

The database is ``--database`` (or ``$DAGFETCH_DATABASE``), else the manifest's ``database``,
else the SQLite file under the cache root.

Nothing of :mod:`dagfetch.graphs` is imported at load time: it brings SQLAlchemy and Alembic,
which only a command that opens the store should pay for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from dagfetch.cli.app import (
    EXIT_NOT_FOUND,
    State,
    completion_state,
    errors_as_exit_codes,
    fail,
)
from dagfetch.errors import ManifestError

if TYPE_CHECKING:
    from dagfetch.graphs import GraphStore
    from dagfetch.graphs.pipeline import GraphPipeline

F = TypeVar("F", bound=Callable[..., Any])

# dagfetch.graphs.schema.DEFAULT_PREFIX, spelt out because importing that module brings
# SQLAlchemy into every --help (a test keeps the two equal)
DEFAULT_PREFIX = "dagfetch_"


def store_options(f: F) -> F:
    f = click.option("--database", envvar="DAGFETCH_DATABASE",
                     help="SQLAlchemy URL of the graph store (default: the manifest's "
                          "`database`, else a SQLite file under the cache root).")(f)
    f = click.option("--table-prefix", "prefix", envvar="DAGFETCH_TABLE_PREFIX",
                     default=DEFAULT_PREFIX, show_default=True,
                     help="Prefix of the store's table names.")(f)
    return f


def environment_options() -> tuple[str | None, str]:
    """``(database, prefix)`` for a command without the store options (``sync --extract``):
    the environment variables the options read."""
    return (os.environ.get("DAGFETCH_DATABASE"),
            os.environ.get("DAGFETCH_TABLE_PREFIX", DEFAULT_PREFIX))


@contextmanager
def graph_errors(state: State) -> Iterator[None]:
    """:func:`errors_as_exit_codes`, and exit code 3 when a DAG, version or run is not in the
    store."""
    from dagfetch.graphs.errors import GraphNotFoundError

    with errors_as_exit_codes(state):
        try:
            yield
        except GraphNotFoundError as exc:
            if state.debug:
                raise
            fail(str(exc), EXIT_NOT_FOUND)


def open_store(state: State, database: str | None, prefix: str, *,
               upgrade: bool = False) -> GraphStore:
    """The store the options name, by the one rule of every command: the default SQLite file
    under the cache root is created on first use; a configured database (``--database``,
    ``$DAGFETCH_DATABASE``, the manifest's ``database``) is only changed by ``db upgrade``
    (``upgrade``), and refused with its hint when its schema is behind."""
    from dagfetch.graphs import GraphStore

    url = database
    if url is None:
        try:
            url = state.workspace.manifest.database
        except ManifestError:
            if state.manifest:  # a manifest was named and is wrong: say so
                raise
    if url is None:
        return GraphStore.for_cache(_cache_root(state), prefix=prefix)
    return GraphStore(url, prefix=prefix, upgrade=upgrade)


def _cache_root(state: State) -> Path:
    from dagfetch.cache.layout import default_cache_root

    try:
        return Path(state.workspace.cache.root)
    except ManifestError:  # no manifest here: the cache root the options name
        return Path(state.home) if state.home else default_cache_root()


def complete_dag_ids(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """DAG ids in the graph store (the one ``--database``/``--table-prefix``, the manifest or
    the cache root name) starting with ``incomplete``; nothing when the store cannot be read."""
    from dagfetch.errors import DagfetchError

    state = completion_state(ctx)
    try:
        store = open_store(state, ctx.params.get("database"),
                           ctx.params.get("prefix") or DEFAULT_PREFIX)
        try:
            ids = store.dag_ids()
        finally:
            store.close()
    except DagfetchError:
        return []
    return [CompletionItem(dag_id) for dag_id in ids if dag_id.startswith(incomplete)]


def pipeline_for(state: State, database: str | None, prefix: str,
                 extractors: Sequence[str] = ()) -> GraphPipeline:
    from dagfetch.graphs.pipeline import GraphPipeline

    ws = state.workspace
    return GraphPipeline(ws, open_store(state, database, prefix), extractors=extractors)
