"""Revision 0002 on a database that revision 0001 created and filled, on SQLite, PostgreSQL
and MariaDB: the rows stay, owners and inactive DAGs are filled in, and it downgrades."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from dagfetch.graphs import GraphStore, SourceRef
from dagfetch.graphs import database as db
from dagfetch.graphs.schema import tables
from tests.graphs.conftest import unique_prefix

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def old_database(backend_url: str) -> Iterator[tuple[str, str]]:
    """A database at revision 0001 with the rows 0.1.0 wrote: repository r extracted three
    times (b.py deleted in v2; c.py failing in v3), a DAG recorded by hand, a pinned run."""
    prefix = unique_prefix()
    engine = db.make_engine(backend_url)
    store_tables = tables(prefix)
    db.upgrade(engine, store_tables, "0001")
    p = prefix

    def table(name: str, *columns: str) -> sa.TableClause:
        return sa.table(f"{p}{name}", *(sa.column(c) for c in columns))

    def naive(offset: int) -> datetime:
        return (T0 + timedelta(minutes=offset)).replace(tzinfo=None)

    dag = table("dag", "id", "dag_id", "latest_number", "last_number", "created_at",
                "updated_at")
    gv = table("graph_version", "id", "dag_pk", "number", "graph_hash", "task_count",
               "edge_count", "created_at")
    task = table("task", "graph_version_id", "task_id", "kind", "attributes")
    sv = table("source_version", "id", "repo_id", "version_id", "extracted_at", "file_count",
               "dag_count", "error_count")
    ds = table("dag_source", "source_version_pk", "dag_pk", "graph_version_id", "file_path")
    ie = table("import_error", "id", "source_version_pk", "file_path", "message")
    run = table("run", "id", "dag_pk", "run_id", "graph_version_id", "source_version_pk",
                "pinned_at")
    rows: list[tuple[sa.TableClause, list[dict[str, Any]]]] = [
        (dag, [{"id": i, "dag_id": name, "latest_number": 1, "last_number": 1,
                "created_at": naive(0), "updated_at": naive(0)}
               for i, name in enumerate(["a", "b", "c", "manual"], start=1)]),
        (gv, [{"id": i, "dag_pk": i, "number": 1, "graph_hash": f"{i:064d}", "task_count": 1,
               "edge_count": 0, "created_at": naive(0)} for i in range(1, 5)]),
        (task, [{"graph_version_id": i, "task_id": "t", "kind": "BashOperator",
                 "attributes": None} for i in range(1, 5)]),
        (sv, [{"id": i, "repo_id": "r", "version_id": f"v{i}", "extracted_at": naive(i),
               "file_count": 3, "dag_count": 3, "error_count": 0} for i in range(1, 4)]),
        (ds, [{"source_version_pk": s, "dag_pk": d, "graph_version_id": d,
               "file_path": f"{'abc'[d - 1]}.py"}
              for s, d in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1)]]),
        (ie, [{"id": 1, "source_version_pk": 3, "file_path": "c.py", "message": "SyntaxError"}]),
        (run, [{"id": 1, "dag_pk": 2, "run_id": "run1", "graph_version_id": 2,
                "source_version_pk": 1, "pinned_at": naive(5)}]),
    ]
    with engine.begin() as conn:
        for target, values in rows:
            conn.execute(sa.insert(target), values)
    engine.dispose()
    yield backend_url, prefix
    GraphStore(backend_url, prefix=prefix).drop()


def test_0002_fills_in_owners_and_inactive_dags_and_keeps_every_row(
    old_database: tuple[str, str]
) -> None:
    url, prefix = old_database
    with pytest.raises(db.SchemaNotReadyError, match="is at schema 0001"):
        GraphStore(url, prefix=prefix, upgrade=False)
    store = GraphStore(url, prefix=prefix)  # upgrades
    assert db.current_revision(store.engine, store.tables) == db.head_revision()
    assert [(v.dag_id, v.active) for v in store.latest_all()] == [
        ("a", True), ("c", True), ("manual", True)]
    [b] = store.inactive()
    assert (b.dag_id, b.vanished_in) == ("b", SourceRef("r", "v2", "b.py"))
    assert b.vanished_at == T0 + timedelta(minutes=2)
    pin = store.run("run1")
    assert (pin.version.number, pin.source, pin.released_at) == (
        1, SourceRef("r", "v1", "b.py"), None)
    assert [e.path for e in store.import_errors("r")] == ["c.py"]
    # recording goes on from there: r's next version drops a
    store.record_extraction("r", "v4", [], {}, file_count=0)
    assert [v.dag_id for v in store.inactive()] == ["a", "b", "c"]
    store.close()


def test_0002_downgrades_to_0001_with_the_rows_kept(old_database: tuple[str, str]) -> None:
    url, prefix = old_database
    store = GraphStore(url, prefix=prefix)
    store.release_run("run1")
    with store.engine.begin() as conn:
        command.downgrade(db.alembic_config(store.tables, conn), "0001")
    assert db.current_revision(store.engine, store.tables) == "0001"
    inspector = sa.inspect(store.engine)
    assert "owner_repo_id" not in {c["name"] for c in inspector.get_columns(f"{prefix}dag")}
    with store.engine.connect() as conn:
        for name, expected in (("dag_source", 6), ("run", 1)):
            table = sa.table(f"{prefix}{name}")
            count = sa.select(sa.func.count()).select_from(table)
            assert conn.execute(count).scalar() == expected
    store.upgrade()
    assert [v.dag_id for v in store.inactive()] == ["b"]
    store.close()
