"""Garbage collection of graph versions: those that are not their DAG's latest, not among
its newest ``keep`` numbers, and not pinned by any run go, with their tasks, edges and source
links, in the store's one transaction.

A function of a connection and the store's tables. Version numbers of removed versions are
never reused (the DAG row keeps its last number), so "version 2" always means one graph.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import chunks
from dagfetch.graphs.model import GcResult
from dagfetch.graphs.schema import GraphTables


def collect(conn: Connection, tables: GraphTables, *, keep: int, dry_run: bool) -> GcResult:
    """Remove (or, with ``dry_run``, only name) the graph versions gc may remove."""
    dag, graph_version, run = tables.dag, tables.graph_version, tables.run
    pinned = sa.exists().where(run.c.graph_version_id == graph_version.c.id)
    rows = conn.execute(
        sa.select(graph_version.c.id, graph_version.c.number, dag.c.dag_id,
                  dag.c.latest_number, pinned.label("pinned"))
        .join(dag, dag.c.id == graph_version.c.dag_pk)
        .order_by(dag.c.dag_id, graph_version.c.number.desc())
    ).all()
    doomed: list[tuple[int, str, int]] = []  # (row id, dag_id, number)
    rank: dict[str, int] = {}  # per DAG: 1 for its newest version, 2 for the next...
    for row in rows:
        rank[row.dag_id] = rank.get(row.dag_id, 0) + 1
        if rank[row.dag_id] > keep and row.number != row.latest_number and not row.pinned:
            doomed.append((row.id, row.dag_id, row.number))
    if not dry_run:
        row_ids = [row_id for row_id, _, _ in doomed]
        for chunk in chunks(row_ids):
            for table in (tables.edge, tables.task, tables.dag_source):
                conn.execute(sa.delete(table).where(table.c.graph_version_id.in_(chunk)))
            conn.execute(sa.delete(graph_version).where(graph_version.c.id.in_(chunk)))
    return GcResult(tuple((dag_id, number) for _, dag_id, number in doomed), dry_run)
