"""The reading queries of the graph store: every query behind the reading methods of
:class:`~dagfetch.graphs.store.GraphStore`, as functions of an open connection and the store's
tables.

They take a connection instead of opening one so that the write paths (recording, run pins)
run the same lookups inside their own transaction; the store opens a read-only one for them
otherwise. Everything returned is a value of :mod:`dagfetch.graphs.model`; the only database
detail that leaves this module is a graph version's row id (:class:`StoredVersion`), which
task, edge, link and run rows point at.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.errors import GraphNotFoundError
from dagfetch.graphs.model import Edge, Graph, GraphVersion, ImportErrorRecord, SourceRef, Task
from dagfetch.graphs.schema import GraphTables


@attrs.frozen
class StoredVersion:
    """A graph version and the id of its ``graph_version`` row."""

    row_id: int
    version: GraphVersion


def graph_version_of(dag_id: str, row: Any, *, latest: bool,
                     dag_row: Any = None) -> GraphVersion:
    """The version a row describes: any row with the ``graph_version`` columns (``number``,
    ``graph_hash``, ``task_count``, ``edge_count``, ``created_at``); ``dag_row``, a row with
    the ``dag`` table's vanished columns, says whether the DAG is inactive."""
    vanished_in, vanished_at = None, None
    if dag_row is not None and dag_row.vanished_version_id is not None:
        vanished_in = SourceRef(dag_row.owner_repo_id or "", dag_row.vanished_version_id,
                                dag_row.vanished_path or "")
        vanished_at = dag_row.vanished_at
    return GraphVersion(dag_id, row.number, row.graph_hash, row.task_count, row.edge_count,
                        row.created_at, latest, vanished_in, vanished_at)


def dag_columns(tables: GraphTables) -> list[sa.Column[Any]]:
    """The ``dag`` columns :func:`graph_version_of` reads from ``dag_row``."""
    dag = tables.dag
    return [dag.c.owner_repo_id, dag.c.vanished_version_id, dag.c.vanished_path,
            dag.c.vanished_at]


def _task_of(row: Any) -> Task:
    return Task(row.task_id, row.kind, json.loads(row.attributes) if row.attributes else {})


def find_version(
    conn: Connection, tables: GraphTables, dag_id: str, number: int | None = None
) -> StoredVersion:
    """A version of a DAG (default: its latest); GraphNotFoundError when there is none."""
    dag, graph_version = tables.dag, tables.graph_version
    dag_row = conn.execute(sa.select(dag).where(dag.c.dag_id == dag_id)).first()
    if dag_row is None or dag_row.latest_number is None:
        raise GraphNotFoundError(f"no DAG {dag_id!r} in the graph store")
    wanted = dag_row.latest_number if number is None else number
    row = conn.execute(sa.select(graph_version).where(
        graph_version.c.dag_pk == dag_row.id, graph_version.c.number == wanted)).first()
    if row is None:
        raise GraphNotFoundError(
            f"DAG {dag_id!r} has no version {wanted} (it never existed, or gc removed it: "
            "gc keeps versions that runs are pinned to)"
        )
    return StoredVersion(row.id, graph_version_of(dag_id, row, dag_row=dag_row,
                                                  latest=wanted == dag_row.latest_number))


def load_graph(conn: Connection, tables: GraphTables, dag_id: str, version_row_id: int) -> Graph:
    """The graph of one version, rebuilt from its task and edge rows."""
    task, edge = tables.task, tables.edge
    tasks = [_task_of(row) for row in conn.execute(
        sa.select(task).where(task.c.graph_version_id == version_row_id))]
    edges = [Edge(row.upstream, row.downstream) for row in conn.execute(
        sa.select(edge).where(edge.c.graph_version_id == version_row_id))]
    return Graph.of(dag_id, tasks, edges)


def dag_ids(conn: Connection, tables: GraphTables) -> list[str]:
    dag = tables.dag
    return list(conn.execute(sa.select(dag.c.dag_id).order_by(dag.c.dag_id)).scalars())


def _is_latest(tables: GraphTables) -> sa.ColumnElement[bool]:
    """Join condition: the graph version a DAG row names as its latest."""
    dag, graph_version = tables.dag, tables.graph_version
    return (graph_version.c.dag_pk == dag.c.id) & (graph_version.c.number == dag.c.latest_number)


def _is_active(tables: GraphTables) -> sa.ColumnElement[bool]:
    """The DAG still defined where it was defined last (see :mod:`~dagfetch.graphs.lifecycle`)."""
    return tables.dag.c.vanished_version_id.is_(None)


def latest_all(
    conn: Connection, tables: GraphTables, *, include_inactive: bool = False
) -> list[GraphVersion]:
    """Every DAG's latest graph version, in one query; inactive DAGs only when asked."""
    dag, graph_version = tables.dag, tables.graph_version
    query = (sa.select(dag.c.dag_id, *dag_columns(tables), graph_version)
             .join(graph_version, _is_latest(tables))
             .order_by(dag.c.dag_id))
    if not include_inactive:
        query = query.where(_is_active(tables))
    return [graph_version_of(row.dag_id, row, latest=True, dag_row=row)
            for row in conn.execute(query)]


def latest_graphs(
    conn: Connection, tables: GraphTables, *, include_inactive: bool = False
) -> dict[str, Graph]:
    """Every DAG's latest graph, tasks and edges included, in three queries whatever the
    number of DAGs; inactive DAGs only when asked."""
    dag, graph_version, task, edge = tables.dag, tables.graph_version, tables.task, tables.edge
    latest = _is_latest(tables)
    if not include_inactive:
        latest = latest & _is_active(tables)
    tasks: dict[str, list[Task]] = {}
    edges: dict[str, list[Edge]] = {}
    for (dag_id,) in conn.execute(sa.select(dag.c.dag_id).join(graph_version, latest)):
        tasks[dag_id] = []
        edges[dag_id] = []
    for task_row in conn.execute(
        sa.select(dag.c.dag_id, task.c.task_id, task.c.kind, task.c.attributes)
        .join(graph_version, latest)
        .join(task, task.c.graph_version_id == graph_version.c.id)
    ):
        tasks[task_row.dag_id].append(_task_of(task_row))
    for edge_row in conn.execute(
        sa.select(dag.c.dag_id, edge.c.upstream, edge.c.downstream)
        .join(graph_version, latest)
        .join(edge, edge.c.graph_version_id == graph_version.c.id)
    ):
        edges[edge_row.dag_id].append(Edge(edge_row.upstream, edge_row.downstream))
    return {dag_id: Graph.of(dag_id, tasks[dag_id], edges[dag_id]) for dag_id in sorted(tasks)}


def history(conn: Connection, tables: GraphTables, dag_id: str) -> list[GraphVersion]:
    """Every stored version of a DAG, oldest first."""
    dag, graph_version = tables.dag, tables.graph_version
    dag_row = conn.execute(sa.select(dag).where(dag.c.dag_id == dag_id)).first()
    if dag_row is None:
        raise GraphNotFoundError(f"no DAG {dag_id!r} in the graph store")
    rows = conn.execute(sa.select(graph_version)
                        .where(graph_version.c.dag_pk == dag_row.id)
                        .order_by(graph_version.c.number)).all()
    return [graph_version_of(dag_id, row, latest=row.number == dag_row.latest_number,
                             dag_row=dag_row)
            for row in rows]


def sources(conn: Connection, tables: GraphTables, version_row_id: int) -> list[SourceRef]:
    """The source versions (and files) that produced a graph version, oldest first."""
    source_version, dag_source = tables.source_version, tables.dag_source
    rows = conn.execute(
        sa.select(source_version.c.repo_id, source_version.c.version_id, dag_source.c.file_path)
        .join(source_version, source_version.c.id == dag_source.c.source_version_pk)
        .where(dag_source.c.graph_version_id == version_row_id)
        .order_by(source_version.c.id)
    ).all()
    return [SourceRef(row.repo_id, row.version_id, row.file_path) for row in rows]


def is_extracted(conn: Connection, tables: GraphTables, repo_id: str, version_id: str) -> bool:
    """Whether this source version's extraction was recorded (here or on another node)."""
    source_version = tables.source_version
    found = conn.execute(
        sa.select(source_version.c.id).where(
            source_version.c.repo_id == repo_id, source_version.c.version_id == version_id,
            source_version.c.extracted_at.is_not(None))
    ).first()
    return found is not None


def import_errors(
    conn: Connection, tables: GraphTables, repo_id: str | None, version_id: str | None
) -> list[ImportErrorRecord]:
    """Import errors of one source version, or of each repository's newest extraction."""
    source_version, import_error = tables.source_version, tables.import_error
    query = sa.select(source_version.c.repo_id, source_version.c.version_id,
                      import_error.c.file_path, import_error.c.message).join(
        source_version, source_version.c.id == import_error.c.source_version_pk)
    if version_id is not None:
        query = query.where(source_version.c.version_id == version_id)
    else:  # newest by extraction time: a version extracted again after a revert is newest
        newest = (sa.select(source_version.c.repo_id,
                            sa.func.max(source_version.c.extracted_at).label("at"))
                  .where(source_version.c.extracted_at.is_not(None))
                  .group_by(source_version.c.repo_id).subquery())
        query = query.join(newest, (newest.c.repo_id == source_version.c.repo_id)
                           & (newest.c.at == source_version.c.extracted_at))
    if repo_id is not None:
        query = query.where(source_version.c.repo_id == repo_id)
    rows = conn.execute(query.order_by(source_version.c.repo_id, import_error.c.file_path)).all()
    return [ImportErrorRecord(row.repo_id, row.version_id, row.file_path, row.message)
            for row in rows]


# -- what the web server reads (dagfetch.web): whole pages in a few queries ---------------------

@attrs.frozen
class ExtractionRecord:
    """What the store recorded of one source version's extraction."""

    repo_id: str
    version_id: str
    extracted_at: datetime | None
    file_count: int
    dag_count: int
    error_count: int


def run_counts(conn: Connection, tables: GraphTables, dag_id: str) -> dict[int, int]:
    """How many runs are pinned to each graph version of a DAG, by version number."""
    dag, run, graph_version = tables.dag, tables.run, tables.graph_version
    rows = conn.execute(
        sa.select(graph_version.c.number, sa.func.count(run.c.id))
        .select_from(run.join(graph_version, graph_version.c.id == run.c.graph_version_id)
                     .join(dag, dag.c.id == run.c.dag_pk))
        .where(dag.c.dag_id == dag_id).group_by(graph_version.c.number)
    ).all()
    return {int(number): int(count) for number, count in rows}


def sources_of_dag(
    conn: Connection, tables: GraphTables, dag_id: str
) -> dict[int, list[SourceRef]]:
    """The source versions (and files) that produced each graph version of a DAG, by version
    number, oldest first: one query for a whole history."""
    dag, graph_version = tables.dag, tables.graph_version
    source_version, dag_source = tables.source_version, tables.dag_source
    rows = conn.execute(
        sa.select(graph_version.c.number, source_version.c.repo_id, source_version.c.version_id,
                  dag_source.c.file_path)
        .select_from(dag_source
                     .join(source_version, source_version.c.id == dag_source.c.source_version_pk)
                     .join(graph_version, graph_version.c.id == dag_source.c.graph_version_id)
                     .join(dag, dag.c.id == dag_source.c.dag_pk))
        .where(dag.c.dag_id == dag_id).order_by(source_version.c.id)
    ).all()
    found: dict[int, list[SourceRef]] = {}
    for row in rows:
        found.setdefault(int(row.number), []).append(
            SourceRef(row.repo_id, row.version_id, row.file_path))
    return found


def latest_sources(conn: Connection, tables: GraphTables) -> dict[str, SourceRef]:
    """Per DAG, the newest source version (and file) that gave its latest graph version."""
    dag, graph_version = tables.dag, tables.graph_version
    source_version, dag_source = tables.source_version, tables.dag_source
    rows = conn.execute(
        sa.select(dag.c.dag_id, source_version.c.repo_id, source_version.c.version_id,
                  dag_source.c.file_path)
        .select_from(dag.join(graph_version, _is_latest(tables))
                     .join(dag_source, dag_source.c.graph_version_id == graph_version.c.id)
                     .join(source_version, source_version.c.id == dag_source.c.source_version_pk))
        .order_by(source_version.c.id)
    ).all()
    return {row.dag_id: SourceRef(row.repo_id, row.version_id, row.file_path) for row in rows}


def extraction_records(
    conn: Connection, tables: GraphTables, repo_id: str
) -> dict[str, ExtractionRecord]:
    """Every source version of a repository the store knows, by version id."""
    source_version = tables.source_version
    rows = conn.execute(sa.select(source_version).where(source_version.c.repo_id == repo_id))
    return {row.version_id: ExtractionRecord(row.repo_id, row.version_id, row.extracted_at,
                                             row.file_count, row.dag_count, row.error_count)
            for row in rows}


def publication(
    conn: Connection, tables: GraphTables, repo_id: str
) -> tuple[str, datetime] | None:
    """The version published for ``repo_id`` and when, or None."""
    published = tables.published
    row = conn.execute(sa.select(published.c.version_id, published.c.published_at)
                       .where(published.c.repo_id == repo_id)).first()
    return (row.version_id, row.published_at) if row is not None else None
