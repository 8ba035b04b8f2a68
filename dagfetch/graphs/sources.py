"""Source versions and links: the ``source_version`` rows (cached code that was extracted, or
that a graph or a run named) and the ``dag_source`` rows saying which file of which source
version gave which graph version of a DAG.

Functions of a connection and the store's tables, run inside the store's transactions by
the write path (:mod:`~dagfetch.graphs.recording`) and by run pins
(:mod:`~dagfetch.graphs.runs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import chunks
from dagfetch.graphs.model import SourceRef
from dagfetch.graphs.schema import GraphTables, utc_now


class SourceKey(NamedTuple):
    """A ``source_version`` row's unique key."""

    repo_id: str
    version_id: str

    @classmethod
    def of(cls, source: SourceRef) -> SourceKey:
        return cls(source.repo_id, source.version_id)


@attrs.frozen
class SourceLink:
    """A ``dag_source`` row: this source version's file gave this graph version of a DAG."""

    dag_pk: int
    version_row_id: int
    source: SourceRef
    file_hash: str | None = None


class LinkTarget(NamedTuple):
    version_row_id: int
    file_path: str
    file_hash: str | None


def source_version_pks(
    conn: Connection, tables: GraphTables, refs: Iterable[SourceRef], *, create: bool = False
) -> dict[SourceKey, int]:
    """The ``source_version`` row ids of these sources; with ``create``, rows are inserted
    (not yet extracted) for those that have none."""
    source_version = tables.source_version
    wanted = sorted({SourceKey.of(ref) for ref in refs})
    found: dict[SourceKey, int] = {}
    for repo_id in sorted({key.repo_id for key in wanted}):
        versions = [key.version_id for key in wanted if key.repo_id == repo_id]
        for chunk in chunks(versions):
            for row in conn.execute(
                sa.select(source_version.c.id, source_version.c.version_id).where(
                    source_version.c.repo_id == repo_id,
                    source_version.c.version_id.in_(chunk))
            ):
                found[SourceKey(repo_id, row.version_id)] = row.id
    missing = [key for key in wanted if key not in found]
    if missing and create:
        conn.execute(sa.insert(source_version), [
            {"repo_id": key.repo_id, "version_id": key.version_id, "extracted_at": None,
             "file_count": 0, "dag_count": 0, "error_count": 0} for key in missing
        ])
        found.update(source_version_pks(
            conn, tables, [SourceRef(key.repo_id, key.version_id) for key in missing]))
    return found


def link_sources(conn: Connection, tables: GraphTables, links: Sequence[SourceLink]) -> None:
    """Write the ``dag_source`` rows of these links; a link that changed is updated."""
    dag_source = tables.dag_source
    source_pks = source_version_pks(conn, tables, [link.source for link in links], create=True)
    existing: dict[tuple[int, int], LinkTarget] = {}
    for chunk in chunks(sorted(set(source_pks.values()))):
        for row in conn.execute(
            sa.select(dag_source).where(dag_source.c.source_version_pk.in_(chunk))
        ):
            existing[(row.source_version_pk, row.dag_pk)] = LinkTarget(
                row.graph_version_id, row.file_path, row.file_hash)
    new_rows = []
    for link in links:
        source = link.source
        # a plain tuple looks a SourceKey up (a NamedTuple): no object per link
        source_pk = source_pks[(source.repo_id, source.version_id)]  # type: ignore[index]
        current = existing.get((source_pk, link.dag_pk))
        if current is None:
            new_rows.append({"source_version_pk": source_pk, "dag_pk": link.dag_pk,
                             "graph_version_id": link.version_row_id,
                             "file_path": source.path, "file_hash": link.file_hash})
            continue
        target = LinkTarget(link.version_row_id, source.path, link.file_hash)
        if current != target:
            # the same code gave another graph (a DAG file that reads the clock...): last wins
            conn.execute(
                sa.update(dag_source)
                .where(dag_source.c.source_version_pk == source_pk,
                       dag_source.c.dag_pk == link.dag_pk)
                .values(graph_version_id=target.version_row_id, file_path=target.file_path,
                        file_hash=target.file_hash))
    if new_rows:
        conn.execute(sa.insert(dag_source), new_rows)


def claim_extraction(
    conn: Connection, tables: GraphTables, source: SourceRef, *,
    file_count: int, dag_count: int, error_count: int,
) -> bool:
    """Mark the source version extracted, with its counts; False when it already was (by
    this node or another), and then nothing was written."""
    source_version = tables.source_version
    row = conn.execute(
        sa.select(source_version.c.id, source_version.c.extracted_at).where(
            source_version.c.repo_id == source.repo_id,
            source_version.c.version_id == source.version_id)
    ).first()
    if row is not None and row.extracted_at is not None:
        return False
    counts = {"extracted_at": utc_now(), "file_count": file_count, "dag_count": dag_count,
              "error_count": error_count}
    if row is None:
        conn.execute(sa.insert(source_version).values(
            repo_id=source.repo_id, version_id=source.version_id, **counts))
        return True
    # of two nodes updating the same row, the second sees 0 rows
    claimed = conn.execute(
        sa.update(source_version)
        .where(source_version.c.id == row.id, source_version.c.extracted_at.is_(None))
        .values(**counts)
    ).rowcount
    return claimed == 1
