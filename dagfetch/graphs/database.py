"""Engines, schema migrations and retries: everything that depends on which database it is.

The URL decides the driver (``postgresql+psycopg://``, ``mysql+pymysql://``, ``sqlite:///``);
dagfetch never imports one by name, so any SQLAlchemy dialect that is installed works.
Defaults to a SQLite file under the cache root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import tenacity
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from dagfetch.errors import ConfigError
from dagfetch.graphs.errors import GraphStoreError, SchemaNotReadyError
from dagfetch.graphs.schema import GraphTables
from dagfetch.redact import mask, masker

Result = TypeVar("Result")
Item = TypeVar("Item")

DATABASE_FILE = "graphs.sqlite3"
MIGRATIONS = "dagfetch.graphs:migrations"
#: Execution option that makes a SQLite transaction take the write lock up front.
WRITE = "dagfetch_write"
#: Ids per ``IN (...)`` list: far below every backend's limit on bound parameters.
CHUNK = 500


def default_url(cache_root: str | Path) -> str:
    """The SQLite file of a cache root: ``<root>/.dagfetch/graphs.sqlite3``."""
    return f"sqlite:///{Path(cache_root).resolve() / '.dagfetch' / DATABASE_FILE}"


def parse_url(url: str | URL, *, field: str = "database") -> URL:
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ConfigError(f"{field}: not a SQLAlchemy database URL "
                          "(like postgresql+psycopg://user@host/db)") from None
    if parsed.password:
        masker.add(str(parsed.password))
    return parsed


def chunks(items: Sequence[Item], size: int = CHUNK) -> Iterable[Sequence[Item]]:
    """``items`` in slices of ``size``, so no statement binds more parameters than a backend
    takes (SQLite's limit was 999 until 3.32)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def describe(url: URL) -> str:
    """The URL with its password hidden: the only way a database is named in messages."""
    return url.render_as_string(hide_password=True)


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``. Driver missing -> ConfigError naming the package to install."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 60)
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    except ModuleNotFoundError as exc:
        hint = {"postgresql": "dagfetch[postgres]", "mysql": "dagfetch[mysql]",
                "mariadb": "dagfetch[mysql]"}.get(parsed.get_backend_name())
        extra = f"; install {hint}" if hint else ""
        raise ConfigError(f"database {describe(parsed)}: driver {exc.name!r} is not "
                          f"installed{extra}") from exc
    except ArgumentError as exc:
        raise ConfigError(f"database {describe(parsed)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_rules(engine)
    return engine


def _sqlite_rules(engine: Engine) -> None:
    """Foreign keys on, WAL so readers never wait for a writer, and write transactions that
    take the write lock at BEGIN: a deferred transaction that reads then writes can fail at
    once with 'database is locked' when another process wrote in between, busy timeout or not."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# -- retries ------------------------------------------------------------------------------

_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock
_MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock


def is_retryable(exc: BaseException) -> bool:
    """A conflict another writer caused: a unique key it took first, a deadlock, a lock."""
    if isinstance(exc, IntegrityError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY or getattr(orig, "pgcode", None) in _PG_RETRY:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_RETRY:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(orig)


def retrying(attempts: int = 8) -> tenacity.Retrying:
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random(0.0, 0.05),
        reraise=True,
    )


def in_transaction(
    engine: Engine, work: Callable[[Connection], Result], *, write: bool = True
) -> Result:
    """Run ``work`` in one transaction; a conflict rolls everything back and runs it again.
    So a write is all or nothing, and two writers of the same row end with one row."""
    try:
        for attempt in retrying():
            with attempt, engine.connect() as conn:
                if write:
                    conn = conn.execution_options(**{WRITE: True})
                with conn.begin():
                    return work(conn)
    except SQLAlchemyError as exc:  # not a race, or still losing after every retry
        raise database_error(engine.url, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover - tenacity reraises


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise database_error(engine.url, exc) from exc


# -- migrations ---------------------------------------------------------------------------

def alembic_config(tables: GraphTables, connection: Connection | None = None) -> Config:
    """Alembic settings for the migrations shipped in this package, for one table prefix."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["table_prefix"] = tables.prefix
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this dagfetch ships."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine, tables: GraphTables) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": tables.version_table})
        return context.get_current_revision()


def upgrade(engine: Engine, tables: GraphTables, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest schema). Safe to repeat."""
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(tables, conn), revision)
    except CommandError as exc:  # e.g. the database is at a revision this dagfetch lacks
        raise SchemaNotReadyError(
            f"database {describe(engine.url)} (prefix {tables.prefix!r}): {exc}; a newer "
            "dagfetch may have migrated it"
        ) from None


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database or another backend)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def check_schema(engine: Engine, tables: GraphTables, url: URL) -> None:
    """Refuse a database whose schema is not this dagfetch's newest (without changing it)."""
    current = current_revision(engine, tables)
    if current != head_revision():
        raise schema_behind(url, tables, current)


def schema_behind(url: URL, tables: GraphTables, current: str | None) -> SchemaNotReadyError:
    """The one message of every command that finds the schema behind (or missing)."""
    state = "has no graph store tables" if current is None else f"is at schema {current}"
    return SchemaNotReadyError(
        f"database {describe(url)} {state} (prefix {tables.prefix!r}); this dagfetch needs "
        f"{head_revision()}: run `dagfetch db upgrade` or GraphStore.upgrade()"
    )


def database_error(url: URL, exc: BaseException) -> GraphStoreError:
    """A database failure as one clear line naming the database, never with the password."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    detail = mask(lines[0]) if lines else type(orig).__name__
    return GraphStoreError(f"database {describe(url)}: {detail}")
