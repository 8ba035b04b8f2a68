"""The write path: recording graphs, and a source version's whole extraction, in a handful of
statements whatever the number of DAGs.

Every function here runs inside a transaction its caller opened
(:func:`dagfetch.graphs.database.in_transaction`). Recording a batch goes in three steps,
each a function over typed values:

1. :func:`read_dag_states`: each DAG's row and its latest version (:class:`DagState`), one
   query per chunk of DAG ids; the rows of DAGs never seen are inserted first.
2. :func:`decide`: per DAG, a :class:`Decision`: unchanged (equal to its latest: nothing is
   written), back to an earlier version with the same content (A -> B -> A), or new, numbered
   after the last number the DAG ever used.
3. :func:`insert_versions` (new versions with their task and edge rows, bulk inserts),
   :func:`move_latest` (the DAG rows' latest and last numbers),
   :func:`~dagfetch.graphs.lifecycle.claim` (owner and active flag, only where they change)
   and :func:`~dagfetch.graphs.sources.link_sources` (which source version and file produced
   which graph version).

A source version's extraction then marks inactive the DAGs of its repository that it no
longer defines (:func:`~dagfetch.graphs.lifecycle.mark_vanished`).

A concurrent writer that took the same number or the same (DAG, hash) first makes an insert
fail on a unique key; the transaction is then retried from step 1, where it finds that
writer's version.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import chunks
from dagfetch.graphs.errors import InvalidGraphError
from dagfetch.graphs.lifecycle import Claim, claim, mark_vanished
from dagfetch.graphs.model import (
    Extraction,
    Graph,
    GraphVersion,
    ImportErrorRecord,
    RecordResult,
    SourceRef,
)
from dagfetch.graphs.queries import StoredVersion, graph_version_of
from dagfetch.graphs.schema import GraphTables, utc_now
from dagfetch.graphs.sources import (
    SourceKey,
    SourceLink,
    claim_extraction,
    link_sources,
    source_version_pks,
)
from dagfetch.redact import get_logger

log = get_logger(__name__)

#: Task and edge rows per INSERT: each row binds three or four parameters.
ROWS_PER_INSERT = 5000

GraphSource = tuple[Graph, SourceRef | None]


class VersionKey(NamedTuple):
    """What makes a graph version unique besides its number: its DAG and its content."""

    dag_pk: int
    graph_hash: str


@attrs.frozen
class DagState:
    """A DAG's row as recording needs it: its key, the last version number it ever used
    (numbers are never reused), its latest version (None until it has one), the repository
    that owns it and whether it is inactive."""

    dag_pk: int
    dag_id: str
    last_number: int
    latest: StoredVersion | None
    owner: str | None = None
    inactive: bool = False

    def claim(self, source: SourceRef | None) -> Claim | None:
        """The change recording makes to this DAG's owner and flag (None: nothing)."""
        if source is not None and (self.owner != source.repo_id or self.inactive):
            return Claim(self.dag_pk, source.repo_id)
        return Claim(self.dag_pk, None) if self.inactive else None

    @property
    def latest_hash(self) -> str | None:
        return self.latest.version.graph_hash if self.latest is not None else None


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # the latest version's graph: nothing is written
    BACK = "back"  # an earlier version's graph: that version becomes latest again
    NEW = "new"  # a graph this DAG never had (or gc removed): a new number


@attrs.frozen
class Decision:
    """What recording does with one graph. ``row_id`` is its ``graph_version`` row: None for
    a new version, whose row :func:`insert_versions` writes."""

    graph: Graph
    source: SourceRef | None
    state: DagState
    outcome: Outcome
    version: GraphVersion
    row_id: int | None

    @property
    def result(self) -> RecordResult:
        return RecordResult(self.version, created=self.outcome is Outcome.NEW,
                            now_latest=self.outcome is not Outcome.UNCHANGED)


# -- recording graphs ----------------------------------------------------------------------

def record(
    conn: Connection, tables: GraphTables, items: Sequence[GraphSource],
    file_hashes: Mapping[str, str] | None = None,
) -> list[RecordResult]:
    """Store each graph unless its DAG has an identical version; one result per item, in
    order. ``file_hashes`` (path -> sha256) go on the source links of those paths."""
    _refuse_repeated_dags(items)
    if not items:
        return []
    now = utc_now()
    states = read_dag_states(conn, tables, [graph.dag_id for graph, _ in items], now)
    decisions = decide(conn, tables, items, states, now)
    row_ids = {decision.state.dag_pk: decision.row_id for decision in decisions
               if decision.row_id is not None}
    created = [decision for decision in decisions if decision.outcome is Outcome.NEW]
    if created:
        row_ids.update(insert_versions(conn, tables, created))
        for decision in created:
            log.info("DAG %s: recorded graph version %d", decision.graph.dag_id,
                     decision.version.number)
    move_latest(conn, tables, decisions, now)
    claims = [item for decision in decisions
              if (item := decision.state.claim(decision.source)) is not None]
    if claims:
        claim(conn, tables, claims, now)
    hashes = file_hashes or {}
    links = [SourceLink(decision.state.dag_pk, row_ids[decision.state.dag_pk], decision.source,
                        hashes.get(decision.source.path))
             for decision in decisions if decision.source is not None]
    if links:
        link_sources(conn, tables, links)
    return [decision.result for decision in decisions]


def _refuse_repeated_dags(items: Sequence[GraphSource]) -> None:
    seen: set[str] = set()
    for graph, _ in items:
        if graph.dag_id in seen:
            raise InvalidGraphError(f"DAG {graph.dag_id!r} given twice in one batch")
        seen.add(graph.dag_id)


def read_dag_states(
    conn: Connection, tables: GraphTables, dag_ids: Sequence[str], now: datetime
) -> dict[str, DagState]:
    """Each DAG's state by dag_id; a DAG without a row gets one (with no version yet)."""
    states = _dag_states(conn, tables, dag_ids)
    missing = [dag_id for dag_id in dag_ids if dag_id not in states]
    if missing:
        conn.execute(sa.insert(tables.dag), [
            {"dag_id": dag_id, "latest_number": None, "last_number": 0, "created_at": now,
             "updated_at": now} for dag_id in missing
        ])
        states.update(_dag_states(conn, tables, missing))
    return states


def _dag_states(
    conn: Connection, tables: GraphTables, dag_ids: Sequence[str]
) -> dict[str, DagState]:
    dag, graph_version = tables.dag, tables.graph_version
    states: dict[str, DagState] = {}
    for chunk in chunks(dag_ids):
        rows = conn.execute(
            sa.select(dag.c.id.label("dag_pk"), dag.c.dag_id, dag.c.last_number,
                      dag.c.owner_repo_id, dag.c.vanished_version_id,
                      graph_version.c.id.label("version_row_id"), graph_version.c.number,
                      graph_version.c.graph_hash, graph_version.c.task_count,
                      graph_version.c.edge_count, graph_version.c.created_at)
            .select_from(dag.outerjoin(
                graph_version,
                (graph_version.c.dag_pk == dag.c.id)
                & (graph_version.c.number == dag.c.latest_number),
            ))
            .where(dag.c.dag_id.in_(chunk))
        ).all()
        for row in rows:
            latest = None
            if row.version_row_id is not None:
                latest = StoredVersion(row.version_row_id,
                                       graph_version_of(row.dag_id, row, latest=True))
            states[row.dag_id] = DagState(row.dag_pk, row.dag_id, row.last_number, latest,
                                          row.owner_repo_id,
                                          row.vanished_version_id is not None)
    return states


def decide(
    conn: Connection,
    tables: GraphTables,
    items: Sequence[GraphSource],
    states: Mapping[str, DagState],
    now: datetime,
) -> list[Decision]:
    """One decision per item, in order. Only graphs that differ from their latest version
    cost a query: is it one of the DAG's earlier versions?"""
    hashes = [graph.content_hash for graph, _ in items]
    differing = [
        VersionKey(states[graph.dag_id].dag_pk, graph_hash)
        for (graph, _), graph_hash in zip(items, hashes, strict=True)
        if states[graph.dag_id].latest_hash != graph_hash
    ]
    earlier = versions_by_hash(conn, tables, differing)
    decisions = []
    for (graph, source), graph_hash in zip(items, hashes, strict=True):
        state = states[graph.dag_id]
        latest = state.latest
        if latest is not None and latest.version.graph_hash == graph_hash:
            decisions.append(Decision(graph, source, state, Outcome.UNCHANGED,
                                      latest.version, latest.row_id))
            continue
        found = earlier.get(VersionKey(state.dag_pk, graph_hash))
        if found is not None:
            decisions.append(Decision(graph, source, state, Outcome.BACK,
                                      graph_version_of(graph.dag_id, found, latest=True),
                                      found.id))
            continue
        version = GraphVersion(graph.dag_id, state.last_number + 1, graph_hash,
                               len(graph.tasks), len(graph.edges), now, True)
        decisions.append(Decision(graph, source, state, Outcome.NEW, version, None))
    return decisions


def versions_by_hash(
    conn: Connection, tables: GraphTables, keys: Sequence[VersionKey]
) -> dict[VersionKey, sa.Row[Any]]:
    """The ``graph_version`` rows with these keys (rows, so callers get ids and numbers)."""
    graph_version = tables.graph_version
    found: dict[VersionKey, sa.Row[Any]] = {}
    for chunk in chunks(keys):
        rows = conn.execute(
            sa.select(graph_version).where(
                graph_version.c.dag_pk.in_(sorted({key.dag_pk for key in chunk})),
                graph_version.c.graph_hash.in_(sorted({key.graph_hash for key in chunk})))
        ).all()
        for row in rows:
            found[VersionKey(row.dag_pk, row.graph_hash)] = row
    return found


def insert_versions(
    conn: Connection, tables: GraphTables, created: Sequence[Decision]
) -> dict[int, int]:
    """Insert new versions with their task and edge rows, a few statements in all; return
    each one's row id by its DAG's key."""
    conn.execute(sa.insert(tables.graph_version), [
        {"dag_pk": decision.state.dag_pk, "number": decision.version.number,
         "graph_hash": decision.version.graph_hash, "task_count": decision.version.task_count,
         "edge_count": decision.version.edge_count, "created_at": decision.version.created_at}
        for decision in created
    ])
    rows = versions_by_hash(conn, tables, [
        VersionKey(decision.state.dag_pk, decision.version.graph_hash) for decision in created])
    row_ids = {
        decision.state.dag_pk: rows[VersionKey(decision.state.dag_pk,
                                               decision.version.graph_hash)].id
        for decision in created
    }
    task_rows = [
        {"graph_version_id": row_ids[decision.state.dag_pk], "task_id": task.task_id,
         "kind": task.kind,
         "attributes": json.dumps(dict(task.attributes), sort_keys=True)
         if task.attributes else None}
        for decision in created for task in decision.graph.tasks
    ]
    edge_rows = [
        {"graph_version_id": row_ids[decision.state.dag_pk], "upstream": edge.upstream,
         "downstream": edge.downstream}
        for decision in created for edge in decision.graph.edges
    ]
    for table, table_rows in ((tables.task, task_rows), (tables.edge, edge_rows)):
        for chunk in chunks(table_rows, ROWS_PER_INSERT):
            conn.execute(sa.insert(table), list(chunk))
    return row_ids


def move_latest(
    conn: Connection, tables: GraphTables, decisions: Sequence[Decision], now: datetime
) -> None:
    """Point each changed DAG's row at its new latest version: one UPDATE per kind of change,
    whatever the number of DAGs."""
    dag = tables.dag
    # bind names must differ from the column names an UPDATE sets
    where = dag.c.id == sa.bindparam("dag_row")
    created = [decision for decision in decisions if decision.outcome is Outcome.NEW]
    if created:
        conn.execute(
            sa.update(dag).where(where).values(
                latest_number=sa.bindparam("new_latest"), last_number=sa.bindparam("new_last"),
                updated_at=now),
            [{"dag_row": decision.state.dag_pk, "new_latest": decision.version.number,
              "new_last": decision.version.number} for decision in created],
        )
    back = [decision for decision in decisions if decision.outcome is Outcome.BACK]
    if back:  # last_number stays: numbers are never reused
        conn.execute(
            sa.update(dag).where(where).values(latest_number=sa.bindparam("new_latest"),
                                               updated_at=now),
            [{"dag_row": decision.state.dag_pk, "new_latest": decision.version.number}
             for decision in back],
        )


# -- a source version's extraction ---------------------------------------------------------

def record_extraction(
    conn: Connection,
    tables: GraphTables,
    source: SourceRef,
    graphs: Sequence[tuple[str, Graph]],
    errors: Mapping[str, str],
    *,
    file_count: int,
    file_hashes: Mapping[str, str] | None = None,
) -> Extraction:
    """Record what one source version's DAG files gave (``(path, graph)`` pairs and
    ``path -> traceback`` import errors), unless that version was recorded before; then
    mark inactive the DAGs of the repository that this version no longer defines.
    ``file_hashes``: the sha256 of each DAG file, when known."""
    if not claim_extraction(conn, tables, source, file_count=file_count,
                            dag_count=len(graphs), error_count=len(errors)):
        return Extraction(source, recorded=False)
    results = record(conn, tables, [
        (graph, SourceRef(source.repo_id, source.version_id, path)) for path, graph in graphs],
        file_hashes)
    failures = sorted(errors.items())
    source_pk = source_version_pks(conn, tables, [source])[SourceKey.of(source)]
    if failures:
        conn.execute(sa.insert(tables.import_error), [
            {"source_version_pk": source_pk, "file_path": path, "message": message}
            for path, message in failures
        ])
    vanished = mark_vanished(conn, tables, source, source_pk, errors.keys(), utc_now())
    return Extraction(
        source, recorded=True, results=tuple(results),
        errors=tuple(ImportErrorRecord(source.repo_id, source.version_id, path, message)
                     for path, message in failures),
        vanished=tuple(vanished),
    )
