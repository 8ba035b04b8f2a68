"""Initial schema: DAGs, graph versions with task and edge rows, source versions, import
errors, runs and published versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written out table by table (not generated from dagfetch.graphs.schema at run time), so this
step stays what it was when later revisions change the schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")
TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _prefix() -> str:
    return str(context.config.attributes.get("table_prefix", "dagfetch_"))


def upgrade() -> None:
    p = _prefix()
    op.create_table(
        f"{p}dag",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("latest_number", sa.Integer(), nullable=True),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dag_id", name=f"{p}uq_dag_dag_id"),
    )
    op.create_table(
        f"{p}published",
        sa.Column("repo_id", sa.String(length=100), nullable=False),
        sa.Column("version_id", sa.String(length=128), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("repo_id"),
    )
    op.create_table(
        f"{p}source_version",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=100), nullable=False),
        sa.Column("version_id", sa.String(length=128), nullable=False),
        sa.Column("extracted_at", TS, nullable=True),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("dag_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo_id", "version_id", name=f"{p}uq_sv_version"),
    )
    op.create_table(
        f"{p}graph_version",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dag_pk", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("graph_hash", sa.String(length=64), nullable=False),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dag_pk"], [f"{p}dag.id"], name=f"{p}fk_gv_dag"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dag_pk", "graph_hash", name=f"{p}uq_gv_hash"),
        sa.UniqueConstraint("dag_pk", "number", name=f"{p}uq_gv_number"),
    )
    op.create_table(
        f"{p}import_error",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source_version_pk", ID, nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_version_pk"], [f"{p}source_version.id"], name=f"{p}fk_ie_sv"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"{p}ix_ie_sv", f"{p}import_error", ["source_version_pk"], unique=False)
    op.create_table(
        f"{p}dag_source",
        sa.Column("source_version_pk", ID, nullable=False),
        sa.Column("dag_pk", ID, nullable=False),
        sa.Column("graph_version_id", ID, nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["dag_pk"], [f"{p}dag.id"], name=f"{p}fk_ds_dag"),
        sa.ForeignKeyConstraint(
            ["graph_version_id"], [f"{p}graph_version.id"], name=f"{p}fk_ds_gv"
        ),
        sa.ForeignKeyConstraint(
            ["source_version_pk"], [f"{p}source_version.id"], name=f"{p}fk_ds_sv"
        ),
        sa.PrimaryKeyConstraint("source_version_pk", "dag_pk", name=f"{p}pk_dag_source"),
    )
    op.create_index(f"{p}ix_ds_gv", f"{p}dag_source", ["graph_version_id"], unique=False)
    op.create_table(
        f"{p}edge",
        sa.Column("graph_version_id", ID, nullable=False),
        sa.Column("upstream", sa.String(length=250), nullable=False),
        sa.Column("downstream", sa.String(length=250), nullable=False),
        sa.ForeignKeyConstraint(
            ["graph_version_id"], [f"{p}graph_version.id"], name=f"{p}fk_edge_gv"
        ),
        sa.PrimaryKeyConstraint("graph_version_id", "upstream", "downstream", name=f"{p}pk_edge"),
    )
    op.create_index(
        f"{p}ix_edge_downstream", f"{p}edge", ["graph_version_id", "downstream"], unique=False
    )
    op.create_table(
        f"{p}run",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dag_pk", ID, nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("graph_version_id", ID, nullable=False),
        sa.Column("source_version_pk", ID, nullable=True),
        sa.Column("pinned_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dag_pk"], [f"{p}dag.id"], name=f"{p}fk_run_dag"),
        sa.ForeignKeyConstraint(
            ["graph_version_id"], [f"{p}graph_version.id"], name=f"{p}fk_run_gv"
        ),
        sa.ForeignKeyConstraint(
            ["source_version_pk"], [f"{p}source_version.id"], name=f"{p}fk_run_sv"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dag_pk", "run_id", name=f"{p}uq_run"),
    )
    op.create_index(f"{p}ix_run_gv", f"{p}run", ["graph_version_id"], unique=False)
    op.create_index(f"{p}ix_run_run_id", f"{p}run", ["run_id"], unique=False)
    op.create_table(
        f"{p}task",
        sa.Column("graph_version_id", ID, nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=250), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["graph_version_id"], [f"{p}graph_version.id"], name=f"{p}fk_task_gv"
        ),
        sa.PrimaryKeyConstraint("graph_version_id", "task_id", name=f"{p}pk_task"),
    )


def downgrade() -> None:
    p = _prefix()
    op.drop_table(f"{p}task")
    op.drop_index(f"{p}ix_run_run_id", table_name=f"{p}run")
    op.drop_index(f"{p}ix_run_gv", table_name=f"{p}run")
    op.drop_table(f"{p}run")
    op.drop_index(f"{p}ix_edge_downstream", table_name=f"{p}edge")
    op.drop_table(f"{p}edge")
    op.drop_index(f"{p}ix_ds_gv", table_name=f"{p}dag_source")
    op.drop_table(f"{p}dag_source")
    op.drop_index(f"{p}ix_ie_sv", table_name=f"{p}import_error")
    op.drop_table(f"{p}import_error")
    op.drop_table(f"{p}graph_version")
    op.drop_table(f"{p}source_version")
    op.drop_table(f"{p}published")
    op.drop_table(f"{p}dag")
