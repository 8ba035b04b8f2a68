"""Run pins: a run keeps the graph version and the source version it started with, whatever
is recorded after it.

Functions of a connection and the store's tables, run inside the store's transactions.
Pinning a pinned run again returns its pin; asking for another version is refused, because a
run's graph never changes once it started.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.errors import GraphNotFoundError, RunAlreadyPinnedError
from dagfetch.graphs.model import Graph, RunPin, SourceRef
from dagfetch.graphs.queries import dag_columns, find_version, graph_version_of, load_graph
from dagfetch.graphs.schema import GraphTables, utc_now
from dagfetch.graphs.sources import SourceKey, source_version_pks


def pin_run(
    conn: Connection, tables: GraphTables, run_id: str, dag_id: str, *,
    number: int | None, source: SourceRef | None,
) -> RunPin:
    """Pin a run to a graph version (default: the DAG's latest) and the source version that
    produced it (default: the newest one linked to that graph version)."""
    stored = find_version(conn, tables, dag_id, number)
    existing = find_run(conn, tables, run_id, dag_id)
    if existing is not None:
        pin = pin_of(conn, tables, existing)
        if number is not None and pin.version.number != number:
            raise RunAlreadyPinnedError(
                f"run {run_id!r} of DAG {dag_id!r} is pinned to version "
                f"{pin.version.number}; a run's graph does not change once pinned"
            )
        return pin
    chosen = source or newest_source(conn, tables, stored.row_id)
    source_pk = None
    if chosen is not None:
        source_pk = source_version_pks(conn, tables, [chosen], create=True)[SourceKey.of(chosen)]
    dag, run = tables.dag, tables.run
    dag_pk = conn.execute(sa.select(dag.c.id).where(dag.c.dag_id == dag_id)).scalar()
    now = utc_now()
    conn.execute(sa.insert(run).values(dag_pk=dag_pk, run_id=run_id,
                                       graph_version_id=stored.row_id,
                                       source_version_pk=source_pk, pinned_at=now))
    return RunPin(run_id, dag_id, stored.version, chosen, now)


def newest_source(conn: Connection, tables: GraphTables, version_row_id: int) -> SourceRef | None:
    """The newest source version (and file) linked to a graph version."""
    source_version, dag_source = tables.source_version, tables.dag_source
    row = conn.execute(
        sa.select(source_version.c.repo_id, source_version.c.version_id, dag_source.c.file_path)
        .join(source_version, source_version.c.id == dag_source.c.source_version_pk)
        .where(dag_source.c.graph_version_id == version_row_id)
        .order_by(source_version.c.id.desc()).limit(1)
    ).first()
    return SourceRef(row.repo_id, row.version_id, row.file_path) if row else None


def find_run(
    conn: Connection, tables: GraphTables, run_id: str, dag_id: str | None
) -> sa.Row[Any] | None:
    """A run's row with its dag_id; ``dag_id`` may be left out when the run id is unique."""
    dag, run = tables.dag, tables.run
    query = (sa.select(run, dag.c.dag_id).join(dag, dag.c.id == run.c.dag_pk)
             .where(run.c.run_id == run_id))
    if dag_id is not None:
        query = query.where(dag.c.dag_id == dag_id)
    rows = conn.execute(query).all()
    if len(rows) > 1:
        dags = ", ".join(sorted(row.dag_id for row in rows))
        raise GraphNotFoundError(f"run {run_id!r} exists for several DAGs ({dags}); "
                                 "name the DAG")
    return rows[0] if rows else None


def pin_of(conn: Connection, tables: GraphTables, run_row: sa.Row[Any]) -> RunPin:
    """The pin a run row (from :func:`find_run`) stands for."""
    dag, graph_version = tables.dag, tables.graph_version
    source_version, dag_source = tables.source_version, tables.dag_source
    version_row = conn.execute(
        sa.select(graph_version, dag.c.latest_number, *dag_columns(tables))
        .join(dag, dag.c.id == graph_version.c.dag_pk)
        .where(graph_version.c.id == run_row.graph_version_id)
    ).one()
    source = None
    if run_row.source_version_pk is not None:
        source_row = conn.execute(sa.select(source_version).where(
            source_version.c.id == run_row.source_version_pk)).one()
        path = conn.execute(sa.select(dag_source.c.file_path).where(
            dag_source.c.source_version_pk == run_row.source_version_pk,
            dag_source.c.dag_pk == run_row.dag_pk)).scalar()
        source = SourceRef(source_row.repo_id, source_row.version_id, path or "")
    version = graph_version_of(run_row.dag_id, version_row, dag_row=version_row,
                               latest=version_row.number == version_row.latest_number)
    return RunPin(run_row.run_id, run_row.dag_id, version, source, run_row.pinned_at,
                  run_row.released_at)


def find_pin(
    conn: Connection, tables: GraphTables, run_id: str, dag_id: str | None
) -> RunPin:
    """A run's pin; GraphNotFoundError when the run is not pinned."""
    run_row = find_run(conn, tables, run_id, dag_id)
    if run_row is None:
        where = f" of DAG {dag_id!r}" if dag_id else ""
        raise GraphNotFoundError(f"no run {run_id!r}{where} is pinned")
    return pin_of(conn, tables, run_row)


def pinned_graph(
    conn: Connection, tables: GraphTables, run_id: str, dag_id: str | None
) -> Graph:
    """The graph a run is pinned to, however the DAG changed since."""
    run_row = find_run(conn, tables, run_id, dag_id)
    if run_row is None:
        raise GraphNotFoundError(f"no run {run_id!r} is pinned")
    return load_graph(conn, tables, run_row.dag_id, run_row.graph_version_id)


def list_runs(
    conn: Connection, tables: GraphTables, dag_id: str | None = None, *,
    number: int | None = None, limit: int | None = None, offset: int = 0,
) -> list[RunPin]:
    """Every pinned run (of one DAG; of one of its graph versions), newest pin first, in one
    query whatever their number; ``limit`` and ``offset`` give one page of them."""
    dag, run, graph_version = tables.dag, tables.run, tables.graph_version
    source_version, dag_source = tables.source_version, tables.dag_source
    query = (
        sa.select(run.c.run_id, run.c.pinned_at, run.c.released_at, dag.c.dag_id,
                  dag.c.latest_number, *dag_columns(tables), graph_version,
                  source_version.c.repo_id, source_version.c.version_id.label("source_version"),
                  dag_source.c.file_path)
        .join(dag, dag.c.id == run.c.dag_pk)
        .join(graph_version, graph_version.c.id == run.c.graph_version_id)
        .outerjoin(source_version, source_version.c.id == run.c.source_version_pk)
        .outerjoin(dag_source, (dag_source.c.source_version_pk == run.c.source_version_pk)
                   & (dag_source.c.dag_pk == run.c.dag_pk))
        .where(*_run_filter(tables, dag_id, number))
        .order_by(run.c.pinned_at.desc(), run.c.id.desc())
        .limit(limit).offset(offset)
    )
    pins = []
    for row in conn.execute(query):
        source = (SourceRef(row.repo_id, row.source_version, row.file_path or "")
                  if row.repo_id is not None else None)
        version = graph_version_of(row.dag_id, row, dag_row=row,
                                   latest=row.number == row.latest_number)
        pins.append(RunPin(row.run_id, row.dag_id, version, source, row.pinned_at,
                           row.released_at))
    return pins


def count_runs(conn: Connection, tables: GraphTables, dag_id: str | None = None, *,
               number: int | None = None) -> int:
    """How many runs :func:`list_runs` lists without a limit (the total of its pages)."""
    dag, run, graph_version = tables.dag, tables.run, tables.graph_version
    joined = (run.join(dag, dag.c.id == run.c.dag_pk)
              .join(graph_version, graph_version.c.id == run.c.graph_version_id))
    total = conn.execute(sa.select(sa.func.count()).select_from(joined)
                         .where(*_run_filter(tables, dag_id, number))).scalar()
    return int(total or 0)


def _run_filter(tables: GraphTables, dag_id: str | None,
                number: int | None) -> list[sa.ColumnElement[bool]]:
    where = []
    if dag_id is not None:
        where.append(tables.dag.c.dag_id == dag_id)
    if number is not None:
        where.append(tables.graph_version.c.number == number)
    return where


def release_run(
    conn: Connection, tables: GraphTables, run_id: str, dag_id: str | None
) -> RunPin:
    """Mark a run released (once: releasing again keeps the first time); its graph pin
    stays, as history. Returns the pin as it is now."""
    run_row = find_run(conn, tables, run_id, dag_id)
    if run_row is None:
        where = f" of DAG {dag_id!r}" if dag_id else ""
        raise GraphNotFoundError(f"no run {run_id!r}{where} is pinned")
    if run_row.released_at is None:
        run = tables.run
        conn.execute(sa.update(run).where(run.c.id == run_row.id).values(released_at=utc_now()))
        run_row = find_run(conn, tables, run_id, run_row.dag_id)
        assert run_row is not None
    return pin_of(conn, tables, run_row)
