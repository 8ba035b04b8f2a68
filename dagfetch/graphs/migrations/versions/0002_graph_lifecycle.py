"""The graph store over time: DAG owners and inactive DAGs, file hashes on source links,
released runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Columns only, all nullable, so existing rows stay valid; then the data already there is
brought in line: each DAG's owner is the repository of its newest source link, and a DAG its
owner's newest extraction no longer defines (and whose file did not fail to import there) is
marked inactive in the extraction that followed its last link, as recording does from now on.
Written with plain table constructs, not dagfetch.graphs.schema, so this step stays what it is
when later revisions change the schema.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _prefix() -> str:
    return str(context.config.attributes.get("table_prefix", "dagfetch_"))


def upgrade() -> None:
    p = _prefix()
    op.add_column(f"{p}dag", sa.Column("owner_repo_id", sa.String(length=100), nullable=True))
    op.add_column(f"{p}dag", sa.Column("vanished_version_id", sa.String(length=128),
                                       nullable=True))
    op.add_column(f"{p}dag", sa.Column("vanished_path", sa.String(length=1024), nullable=True))
    op.add_column(f"{p}dag", sa.Column("vanished_at", TS, nullable=True))
    op.create_index(f"{p}ix_dag_owner", f"{p}dag", ["owner_repo_id"], unique=False)
    op.add_column(f"{p}dag_source", sa.Column("file_hash", sa.String(length=64), nullable=True))
    op.add_column(f"{p}run", sa.Column("released_at", TS, nullable=True))
    _backfill(op.get_bind(), p)


def _backfill(conn: sa.Connection, p: str) -> None:
    dag = sa.table(f"{p}dag", sa.column("id"), sa.column("owner_repo_id"),
                   sa.column("vanished_version_id"), sa.column("vanished_path"),
                   sa.column("vanished_at"))
    source = sa.table(f"{p}source_version", sa.column("id"), sa.column("repo_id"),
                      sa.column("version_id"), sa.column("extracted_at"))
    link = sa.table(f"{p}dag_source", sa.column("source_version_pk"), sa.column("dag_pk"),
                    sa.column("file_path"))
    error = sa.table(f"{p}import_error", sa.column("source_version_pk"),
                     sa.column("file_path"))
    # the newest link of each DAG: its owner and the file that defined it
    newest: dict[int, Any] = {}
    for row in conn.execute(
        sa.select(link.c.dag_pk, link.c.file_path, source.c.id, source.c.repo_id)
        .join(source, source.c.id == link.c.source_version_pk)
        .order_by(source.c.id)
    ):
        newest[row.dag_pk] = row
    extractions: dict[str, list[Any]] = {}  # per repository, oldest first
    for row in conn.execute(
        sa.select(source.c.id, source.c.repo_id, source.c.version_id, source.c.extracted_at)
        .where(source.c.extracted_at.is_not(None))
        .order_by(source.c.extracted_at, source.c.id)
    ):
        extractions.setdefault(row.repo_id, []).append(row)
    failed = {(row.source_version_pk, row.file_path) for row in conn.execute(
        sa.select(error.c.source_version_pk, error.c.file_path))}
    for dag_pk, last in newest.items():
        values: dict[str, Any] = {"owner_repo_id": last.repo_id}
        later = [row for row in extractions.get(last.repo_id, []) if row.id > last.id]
        if later and (later[-1].id, last.file_path) not in failed:
            values.update(vanished_version_id=later[0].version_id, vanished_path=last.file_path,
                          vanished_at=later[0].extracted_at)
        conn.execute(sa.update(dag).where(dag.c.id == dag_pk).values(**values))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite has it since 3.35): batch mode would copy and drop the dag
    # table, which the other tables' foreign keys refuse
    p = _prefix()
    op.drop_column(f"{p}run", "released_at")
    op.drop_column(f"{p}dag_source", "file_hash")
    op.drop_index(f"{p}ix_dag_owner", table_name=f"{p}dag")
    for column in ("vanished_at", "vanished_path", "vanished_version_id", "owner_repo_id"):
        op.drop_column(f"{p}dag", column)
