"""Publishing for follow mode: per repository, the version the leading node chose for every
node to serve. The leader publishes only after that version's graphs are recorded, so a
follower never serves code whose graphs are missing (see :class:`GraphPipeline`).

Functions of a connection and the store's tables, run inside the store's transactions.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.schema import GraphTables, utc_now


def publish(conn: Connection, tables: GraphTables, repo_id: str, version_id: str) -> None:
    """Make ``version_id`` the published version of ``repo_id``, replacing the previous one."""
    published = tables.published
    now = utc_now()
    updated = conn.execute(sa.update(published).where(published.c.repo_id == repo_id)
                           .values(version_id=version_id, published_at=now)).rowcount
    if updated == 0:
        conn.execute(sa.insert(published).values(repo_id=repo_id, version_id=version_id,
                                                 published_at=now))


def published_version(conn: Connection, tables: GraphTables, repo_id: str) -> str | None:
    """The version published for ``repo_id``, or None when nothing was."""
    published = tables.published
    version_id: str | None = conn.execute(
        sa.select(published.c.version_id).where(published.c.repo_id == repo_id)).scalar()
    return version_id
