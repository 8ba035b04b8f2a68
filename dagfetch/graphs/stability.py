"""DAGs whose graph keeps changing while their code does not: task ids made from the clock or
a random number, an order that leaks into ids or edges. Each such extraction stores a new graph
version, so the history fills with noise and runs pin versions that mean nothing.

The definition, computed from what the store has (the source links of each extraction, which
carry the DAG file's sha256):

- look at the repository's newest ``window`` extractions (10 by default), and at the DAGs that
  repository owns;
- a *pair* is two consecutive extractions of that window that both defined the DAG from a
  file with the same sha256; a *change* is a pair whose graph versions differ;
- the DAG is **unstable** when it has at least ``min_changes`` changes (3) and they are at
  least three quarters of its pairs: almost every extraction that left its file alone gave it
  a new graph.

A DAG whose file changed between two extractions is never counted for that pair (editing a
DAG is not instability), nor is a pair whose file hash is not known (links recorded before
hashes were). What keeps changing is named from the diffs of the changes: task ids added and
removed each time, edges rewired among the same tasks, kinds or attributes that change.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import CHUNK
from dagfetch.graphs.model import Graph, GraphDiff, UnstableDag, diff
from dagfetch.graphs.queries import load_graph
from dagfetch.graphs.schema import GraphTables

DEFAULT_WINDOW = 10
MIN_CHANGES = 3
#: Share of a DAG's pairs that must be changes: "almost every extraction".
SHARE = 0.75
#: Ids named per kind of change in a message.
NAMED = 3


def unstable_dags(
    conn: Connection, tables: GraphTables, repo_id: str | None = None, *,
    dag_ids: Collection[str] | None = None, window: int = DEFAULT_WINDOW,
    min_changes: int = MIN_CHANGES,
) -> list[UnstableDag]:
    """The unstable DAGs of one repository (default: of every repository), by dag_id;
    ``dag_ids`` limits the check to these DAGs."""
    source_version = tables.source_version
    query = sa.select(source_version.c.repo_id).where(source_version.c.extracted_at.is_not(None))
    if repo_id is not None:
        query = query.where(source_version.c.repo_id == repo_id)
    found: list[UnstableDag] = []
    for repo in sorted(set(conn.execute(query.distinct()).scalars())):
        found.extend(_of_repository(conn, tables, repo, dag_ids, window, min_changes))
    return sorted(found, key=lambda item: (item.dag_id, item.repo_id))


def _of_repository(
    conn: Connection, tables: GraphTables, repo_id: str, dag_ids: Collection[str] | None,
    window: int, min_changes: int,
) -> list[UnstableDag]:
    source_version, dag_source, dag = tables.source_version, tables.dag_source, tables.dag
    newest = [row.id for row in conn.execute(
        sa.select(source_version.c.id)
        .where(source_version.c.repo_id == repo_id, source_version.c.extracted_at.is_not(None))
        .order_by(source_version.c.extracted_at.desc(), source_version.c.id.desc())
        .limit(window))]
    if len(newest) <= min_changes:  # too few extractions for that many changes
        return []
    position = {source_pk: index for index, source_pk in enumerate(reversed(newest))}
    query = (sa.select(dag_source.c.source_version_pk, dag_source.c.graph_version_id,
                       dag_source.c.file_path, dag_source.c.file_hash, dag.c.dag_id)
             .join(dag, dag.c.id == dag_source.c.dag_pk)
             .where(dag_source.c.source_version_pk.in_(newest),
                    dag.c.owner_repo_id == repo_id))
    if dag_ids is not None and len(dag_ids) <= CHUNK:  # else filtered below, not in SQL
        query = query.where(dag.c.dag_id.in_(sorted(dag_ids)))
    by_dag: dict[str, dict[int, Any]] = {}
    for row in conn.execute(query):
        if dag_ids is None or row.dag_id in dag_ids:
            by_dag.setdefault(row.dag_id, {})[position[row.source_version_pk]] = row
    found = []
    for dag_id, links in sorted(by_dag.items()):
        changes, pairs = _changes(links)
        if len(changes) >= min_changes and len(changes) >= SHARE * pairs:
            graphs = _graphs(conn, tables, dag_id, changes)
            diffs = [diff(graphs[old], graphs[new]) for old, new in changes]
            found.append(UnstableDag(dag_id, repo_id, links[max(links)].file_path,
                                     len(changes), pairs, describe_changes(diffs), diffs[-1]))
    return found


def _changes(links: dict[int, Any]) -> tuple[list[tuple[int, int]], int]:
    """``(changes, pairs)``: the (old, new) graph version rows of each change, oldest first,
    and the number of pairs (consecutive extractions, same file hash)."""
    changes: list[tuple[int, int]] = []
    pairs = 0
    for index in sorted(links):
        before, after = links.get(index - 1), links[index]
        if before is None or after.file_hash is None or before.file_hash != after.file_hash:
            continue
        pairs += 1
        if before.graph_version_id != after.graph_version_id:
            changes.append((before.graph_version_id, after.graph_version_id))
    return changes, pairs


def _graphs(conn: Connection, tables: GraphTables, dag_id: str,
            changes: Sequence[tuple[int, int]]) -> dict[int, Graph]:
    wanted = sorted({row_id for pair in changes for row_id in pair})
    return {row_id: load_graph(conn, tables, dag_id, row_id) for row_id in wanted}


def describe_changes(diffs: Sequence[GraphDiff]) -> tuple[str, ...]:
    """What keeps changing across ``diffs`` (oldest first), one phrase per kind of change."""
    what = []
    churn = [d for d in diffs if d.tasks_added or d.tasks_removed]
    if churn:
        last = churn[-1]
        what.append(f"task ids added and removed in {len(churn)} of {len(diffs)} changes "
                    f"(last: added {_named(last.tasks_added)}, removed "
                    f"{_named(last.tasks_removed)})")
    rewired = [d for d in diffs if (d.edges_added or d.edges_removed)
               and not (d.tasks_added or d.tasks_removed)]
    if rewired:
        last = rewired[-1]
        edges = [f"+{e.upstream}->{e.downstream}" for e in last.edges_added]
        edges += [f"-{e.upstream}->{e.downstream}" for e in last.edges_removed]
        what.append(f"edges rewired among the same tasks in {len(rewired)} of {len(diffs)} "
                    f"changes (last: {_named(edges)})")
    altered = [d for d in diffs if d.tasks_changed]
    if altered:
        names = sorted({task_id for d in altered for task_id in d.tasks_changed})
        what.append(f"kind or attributes of {_named(names)} changed in {len(altered)} of "
                    f"{len(diffs)} changes")
    return tuple(what)


def _named(ids: Sequence[str]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(repr(item) for item in ids[:NAMED])
    return shown + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")
