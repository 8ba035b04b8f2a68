"""DAGs over time: which repository owns a DAG, and when a DAG becomes inactive.

A DAG is *owned* by the repository whose extraction defined it most recently (a DAG recorded
by hand, without a source, has no owner). When a repository's new extraction is recorded,
every active DAG it owns that this extraction does not define becomes *inactive*, with the
source version where it vanished and the file that used to define it; DAGs owned by another
repository are not touched. A DAG whose file failed to import in that extraction stays
active: a broken file is not a deleted DAG, and the import error says why its graph was not
refreshed. An inactive DAG that any recording defines again is active again (and owned by
the repository that defined it), and so is one that a version extracted before defines when
the repository goes back to it (:func:`mark_current`).

Functions of a connection and the store's tables, run inside the recording transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import chunks
from dagfetch.graphs.model import SourceRef
from dagfetch.graphs.schema import GraphTables
from dagfetch.redact import get_logger

log = get_logger(__name__)


class Claim(NamedTuple):
    """A recorded DAG: active from now on, owned by ``owner`` (None: the owner stays)."""

    dag_pk: int
    owner: str | None


def claim(conn: Connection, tables: GraphTables, claims: Sequence[Claim], now: datetime) -> None:
    """Make these DAGs active and owned; one UPDATE per kind, whatever their number. Callers
    pass only DAGs whose row changes, so re-recording unchanged DAGs writes nothing."""
    dag = tables.dag
    where = dag.c.id == sa.bindparam("dag_row")
    active = {"vanished_version_id": None, "vanished_path": None, "vanished_at": None}
    owned = [{"dag_row": item.dag_pk, "new_owner": item.owner} for item in claims
             if item.owner is not None]
    if owned:
        conn.execute(sa.update(dag).where(where).values(
            owner_repo_id=sa.bindparam("new_owner"), updated_at=now, **active), owned)
    unowned = [{"dag_row": item.dag_pk} for item in claims if item.owner is None]
    if unowned:
        conn.execute(sa.update(dag).where(where).values(updated_at=now, **active), unowned)


def mark_vanished(
    conn: Connection,
    tables: GraphTables,
    source: SourceRef,
    source_pk: int,
    failed_paths: Collection[str],
    now: datetime,
) -> list[str]:
    """Mark inactive the active DAGs of ``source``'s repository that its extraction (source
    version row ``source_pk``, already linked) does not define; return their ids."""
    dag, dag_source = tables.dag, tables.dag_source
    linked_here = sa.exists().where(dag_source.c.dag_pk == dag.c.id,
                                    dag_source.c.source_version_pk == source_pk)
    candidates = conn.execute(
        sa.select(dag.c.id, dag.c.dag_id)
        .where(dag.c.owner_repo_id == source.repo_id, dag.c.vanished_version_id.is_(None),
               ~linked_here)
        .order_by(dag.c.dag_id)
    ).all()
    if not candidates:
        return []
    last_files = _last_files(conn, tables, source.repo_id, [row.id for row in candidates])
    vanished = [(row.id, row.dag_id, last_files.get(row.id, "")) for row in candidates
                if last_files.get(row.id) not in failed_paths]
    if vanished:
        conn.execute(
            sa.update(dag).where(dag.c.id == sa.bindparam("dag_row")).values(
                vanished_version_id=source.version_id, vanished_path=sa.bindparam("path"),
                vanished_at=now, updated_at=now),
            [{"dag_row": dag_pk, "path": path} for dag_pk, _, path in vanished],
        )
        for _, dag_id, path in vanished:
            log.info("DAG %s: no longer defined by %s at %s (was in %s); now inactive",
                     dag_id, source.repo_id, source.version_id, path or "?")
    return [dag_id for _, dag_id, _ in vanished]


def mark_current(conn: Connection, tables: GraphTables, source: SourceRef,
                 now: datetime) -> list[str] | None:
    """The repository went (back) to ``source``, extracted before: the DAGs that version
    defines are active and its repository's again, the others it owned are inactive.
    Returns the DAGs now inactive; None when ``source`` was never extracted."""
    source_version, dag_source, dag = tables.source_version, tables.dag_source, tables.dag
    import_error = tables.import_error
    source_pk = conn.execute(sa.select(source_version.c.id).where(
        source_version.c.repo_id == source.repo_id,
        source_version.c.version_id == source.version_id,
        source_version.c.extracted_at.is_not(None))).scalar()
    if source_pk is None:
        return None
    defined = conn.execute(
        sa.select(dag.c.id).join(dag_source, dag_source.c.dag_pk == dag.c.id)
        .where(dag_source.c.source_version_pk == source_pk,
               (dag.c.vanished_version_id.is_not(None))
               | (dag.c.owner_repo_id.is_(None)) | (dag.c.owner_repo_id != source.repo_id))
    ).scalars().all()
    if defined:
        claim(conn, tables, [Claim(dag_pk, source.repo_id) for dag_pk in defined], now)
    failed = set(conn.execute(sa.select(import_error.c.file_path)
                              .where(import_error.c.source_version_pk == source_pk)).scalars())
    return mark_vanished(conn, tables, source, source_pk, failed, now)


def _last_files(
    conn: Connection, tables: GraphTables, repo_id: str, dag_pks: Sequence[int]
) -> dict[int, str]:
    """Per DAG, the file that defined it in the newest source version of ``repo_id`` that
    did."""
    dag_source, source_version = tables.dag_source, tables.source_version
    files: dict[int, str] = {}
    for chunk in chunks(list(dag_pks)):
        for row in conn.execute(
            sa.select(dag_source.c.dag_pk, dag_source.c.file_path)
            .join(source_version, source_version.c.id == dag_source.c.source_version_pk)
            .where(source_version.c.repo_id == repo_id, dag_source.c.dag_pk.in_(chunk))
            .order_by(source_version.c.id)
        ):
            files[row.dag_pk] = row.file_path  # ordered: the newest link wins
    return files
