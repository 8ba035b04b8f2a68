"""The graph store's tables, for any table-name prefix.

::

    dag             one row per dag_id: its latest graph version, its last version number, the
                    repository that defined it most recently, and where it vanished (inactive)
    graph_version   (dag, number) and (dag, content hash) both unique: a graph is stored once
    task            (graph_version, task_id) rows: kind and attributes
    edge            (graph_version, upstream, downstream) rows, queryable with plain SQL
    source_version  (repo_id, version_id) of cached code that was extracted, with counts
    dag_source      which source version and file (with the file's sha256) produced which
                    graph version of a DAG
    import_error    per source version and file, the traceback of a file that failed
    run             (dag, run_id) pinned to one graph version and one source version; when
                    it was released (its code may then leave the caches)
    published       per repository, the version the leading node chose for every node

Every table, constraint and index name carries the prefix (PostgreSQL and MariaDB name
indexes and foreign keys per database, not per table), so several stores, or a store inside
an existing metastore, never clash. Autoincrement keys are BIGINT except on SQLite, where only
``INTEGER PRIMARY KEY`` autoincrements. Timestamps are stored as naive UTC and read back as
aware UTC, whatever the server's time zone.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.types import TypeEngine

from dagfetch.errors import ConfigError

DEFAULT_PREFIX = "dagfetch_"
PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,23}$")
ID = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")

DAG_ID_LEN = 250
REPO_ID_LEN = 100
VERSION_ID_LEN = 128
PATH_LEN = 1024
HASH_LEN = 64


class UtcDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):  # DATETIME drops microseconds by default
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite without type detection
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=timezone.utc)


def utc_now() -> datetime:
    """Now, as the aware UTC timestamp every column of the store takes."""
    return datetime.now(timezone.utc)


def check_prefix(prefix: str) -> str:
    if not PREFIX.match(prefix):
        raise ConfigError(
            f"table prefix {prefix!r}: use letters, digits and '_', at most 24 characters, "
            "not starting with a digit"
        )
    return prefix


@attrs.frozen
class GraphTables:
    prefix: str
    metadata: MetaData
    dag: Table
    graph_version: Table
    task: Table
    edge: Table
    source_version: Table
    dag_source: Table
    import_error: Table
    run: Table
    published: Table

    @property
    def version_table(self) -> str:
        """Alembic's history table for this store, separate from the host's own."""
        return f"{self.prefix}alembic_version"

    def all(self) -> list[Table]:
        """Every table, parents first (delete in reverse)."""
        return list(self.metadata.sorted_tables)


@functools.cache
def tables(prefix: str = DEFAULT_PREFIX) -> GraphTables:
    """The tables of a store whose names start with ``prefix``."""
    prefix = check_prefix(prefix)
    metadata = MetaData()

    def foreign_key(columns: list[str], table: str, name: str) -> ForeignKeyConstraint:
        return ForeignKeyConstraint(columns, [f"{prefix}{table}.id"], name=f"{prefix}fk_{name}")

    dag = Table(
        f"{prefix}dag", metadata,
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("dag_id", String(DAG_ID_LEN), nullable=False),
        Column("latest_number", Integer, nullable=True),
        Column("last_number", Integer, nullable=False, default=0),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        # the repository whose extraction defined the DAG most recently (null: recorded by
        # hand); only that repository's extractions mark it inactive
        Column("owner_repo_id", String(REPO_ID_LEN), nullable=True),
        # set while the DAG is inactive: the owner's source version that no longer defined
        # it, the file that used to, and when
        Column("vanished_version_id", String(VERSION_ID_LEN), nullable=True),
        Column("vanished_path", String(PATH_LEN), nullable=True),
        Column("vanished_at", UtcDateTime, nullable=True),
        UniqueConstraint("dag_id", name=f"{prefix}uq_dag_dag_id"),
        Index(f"{prefix}ix_dag_owner", "owner_repo_id"),
    )
    graph_version = Table(
        f"{prefix}graph_version", metadata,
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("dag_pk", ID, nullable=False),
        Column("number", Integer, nullable=False),
        Column("graph_hash", String(HASH_LEN), nullable=False),
        Column("task_count", Integer, nullable=False),
        Column("edge_count", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        foreign_key(["dag_pk"], "dag", "gv_dag"),
        UniqueConstraint("dag_pk", "number", name=f"{prefix}uq_gv_number"),
        UniqueConstraint("dag_pk", "graph_hash", name=f"{prefix}uq_gv_hash"),
    )
    task = Table(
        f"{prefix}task", metadata,
        Column("graph_version_id", ID, nullable=False),
        Column("task_id", String(DAG_ID_LEN), nullable=False),
        Column("kind", String(DAG_ID_LEN), nullable=True),
        Column("attributes", Text, nullable=True),
        PrimaryKeyConstraint("graph_version_id", "task_id", name=f"{prefix}pk_task"),
        foreign_key(["graph_version_id"], "graph_version", "task_gv"),
    )
    edge = Table(
        f"{prefix}edge", metadata,
        Column("graph_version_id", ID, nullable=False),
        Column("upstream", String(DAG_ID_LEN), nullable=False),
        Column("downstream", String(DAG_ID_LEN), nullable=False),
        PrimaryKeyConstraint("graph_version_id", "upstream", "downstream", name=f"{prefix}pk_edge"),
        foreign_key(["graph_version_id"], "graph_version", "edge_gv"),
        Index(f"{prefix}ix_edge_downstream", "graph_version_id", "downstream"),
    )
    source_version = Table(
        f"{prefix}source_version", metadata,
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("repo_id", String(REPO_ID_LEN), nullable=False),
        Column("version_id", String(VERSION_ID_LEN), nullable=False),
        # null until a whole extraction of this version is recorded (a graph recorded by
        # hand with this source, or a run pinned to it, creates the row earlier)
        Column("extracted_at", UtcDateTime, nullable=True),
        Column("file_count", Integer, nullable=False, default=0),
        Column("dag_count", Integer, nullable=False, default=0),
        Column("error_count", Integer, nullable=False, default=0),
        UniqueConstraint("repo_id", "version_id", name=f"{prefix}uq_sv_version"),
    )
    dag_source = Table(
        f"{prefix}dag_source", metadata,
        Column("source_version_pk", ID, nullable=False),
        Column("dag_pk", ID, nullable=False),
        Column("graph_version_id", ID, nullable=False),
        Column("file_path", String(PATH_LEN), nullable=False),
        # sha256 of the DAG file (null when not known): a graph that changes while its file
        # does not is what `graph check` reports
        Column("file_hash", String(HASH_LEN), nullable=True),
        PrimaryKeyConstraint("source_version_pk", "dag_pk", name=f"{prefix}pk_dag_source"),
        foreign_key(["source_version_pk"], "source_version", "ds_sv"),
        foreign_key(["dag_pk"], "dag", "ds_dag"),
        foreign_key(["graph_version_id"], "graph_version", "ds_gv"),
        Index(f"{prefix}ix_ds_gv", "graph_version_id"),
    )
    import_error = Table(
        f"{prefix}import_error", metadata,
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("source_version_pk", ID, nullable=False),
        Column("file_path", String(PATH_LEN), nullable=False),
        Column("message", Text, nullable=False),
        foreign_key(["source_version_pk"], "source_version", "ie_sv"),
        Index(f"{prefix}ix_ie_sv", "source_version_pk"),
    )
    run = Table(
        f"{prefix}run", metadata,
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("dag_pk", ID, nullable=False),
        Column("run_id", String(DAG_ID_LEN), nullable=False),
        Column("graph_version_id", ID, nullable=False),
        Column("source_version_pk", ID, nullable=True),
        Column("pinned_at", UtcDateTime, nullable=False),
        Column("released_at", UtcDateTime, nullable=True),
        foreign_key(["dag_pk"], "dag", "run_dag"),
        foreign_key(["graph_version_id"], "graph_version", "run_gv"),
        foreign_key(["source_version_pk"], "source_version", "run_sv"),
        UniqueConstraint("dag_pk", "run_id", name=f"{prefix}uq_run"),
        Index(f"{prefix}ix_run_gv", "graph_version_id"),
        Index(f"{prefix}ix_run_run_id", "run_id"),
    )
    published = Table(
        f"{prefix}published", metadata,
        Column("repo_id", String(REPO_ID_LEN), primary_key=True),
        Column("version_id", String(VERSION_ID_LEN), nullable=False),
        Column("published_at", UtcDateTime, nullable=False),
    )
    return GraphTables(prefix, metadata, dag, graph_version, task, edge, source_version, dag_source,
                       import_error, run, published)
