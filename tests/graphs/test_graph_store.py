"""The store suite, on SQLite, PostgreSQL and MariaDB (see conftest.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dagfetch.graphs import (
    Graph,
    GraphNotFoundError,
    GraphStore,
    RunAlreadyPinnedError,
    SchemaNotReadyError,
    SourceRef,
    Task,
)
from dagfetch.graphs.database import head_revision
from dagfetch.graphs.errors import GraphStoreError
from tests.graphs.conftest import unique_prefix

A = Graph.of("etl", ["extract", "transform", "load"],
             [("extract", "transform"), ("transform", "load")])
B = Graph.of("etl", ["extract", "transform", "load", "notify"],
             [("extract", "transform"), ("transform", "load"), ("load", "notify")])
C = Graph.of("etl", ["extract", "load"], [("extract", "load")])


@contextmanager
def statements(store: GraphStore) -> Iterator[list[str]]:
    """Every SQL statement the store sends while the block runs."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.strip())

    sa.event.listen(store.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", listener)


def writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def written_tables(seen: list[str]) -> set[str]:
    return {m.group(1) for s in writes(seen)
            if (m := re.match(r"(?:INSERT INTO|UPDATE|DELETE FROM)\s+[\"`]?(\w+)", s, re.I))}


def count_rows(store: GraphStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- recording ---------------------------------------------------------------------------------

def test_record_numbers_versions_and_an_unchanged_graph_writes_nothing(store: GraphStore) -> None:
    first = store.record(A)
    assert (first.version.number, first.created, first.now_latest) == (1, True, True)
    with statements(store) as seen:
        again = store.record(A)
    assert writes(seen) == []
    assert (again.version.number, again.created, again.now_latest) == (1, False, False)
    assert again.version.graph_hash == A.content_hash
    second = store.record(B)
    assert (second.version.number, second.created) == (2, True)
    assert store.latest("etl").number == 2
    assert store.graph("etl") == B
    assert store.graph("etl", 1) == A


def test_a_b_a_gives_two_versions_not_three(store: GraphStore) -> None:
    store.record(A)
    store.record(B)
    back = store.record(A)
    assert (back.version.number, back.created, back.now_latest) == (1, False, True)
    assert [(v.number, v.latest) for v in store.history("etl")] == [(1, True), (2, False)]
    assert store.latest("etl").number == 1
    # numbers are never reused: the next new graph is 3
    assert store.record(C).version.number == 3


def test_rerecording_1000_unchanged_dags_writes_no_row(store: GraphStore) -> None:
    graphs = [Graph.of(f"dag_{i:04d}", ["a", "b", Task("c", "Bash")], [("a", "b"), ("b", "c")])
              for i in range(1000)]
    started = time.monotonic()
    with statements(store) as first:
        created = store.record_many(graphs)
    first_seconds = time.monotonic() - started
    assert all(r.created and r.version.number == 1 for r in created)
    assert count_rows(store, store.tables.task) == 3000
    assert count_rows(store, store.tables.edge) == 2000
    # bulk writes: a handful of statements, not one per DAG
    assert len(writes(first)) <= 12, writes(first)

    started = time.monotonic()
    with statements(store) as seen:
        again = store.record_many(graphs)
    seconds = time.monotonic() - started
    assert writes(seen) == []
    assert len(seen) <= 6  # two SELECTs (500 DAGs each) plus BEGIN on SQLite
    assert [r.version.number for r in again] == [1] * 1000
    assert not any(r.created or r.now_latest for r in again)
    print(f"\n{store.engine.dialect.name}: 1000 new DAGs in {first_seconds:.2f}s "
          f"({len(first)} statements); re-recorded unchanged in {seconds:.2f}s "
          f"({len(seen)} statements, 0 writes)")


def test_a_new_source_version_with_unchanged_graphs_only_links(store: GraphStore) -> None:
    graphs = [Graph.of(f"d{i}", ["a", "b"], [("a", "b")]) for i in range(50)]
    store.record_extraction("repo", "v1", [(f"dags/d{i}.py", g) for i, g in enumerate(graphs)],
                            {}, file_count=50)
    with statements(store) as seen:
        extraction = store.record_extraction(
            "repo", "v2", [(f"dags/d{i}.py", g) for i, g in enumerate(graphs)], {},
            file_count=50)
    assert extraction.recorded and not any(r.created for r in extraction.results)
    assert written_tables(seen) == {store.tables.source_version.name, store.tables.dag_source.name}
    assert count_rows(store, store.tables.graph_version) == 50
    assert store.sources("d7") == [SourceRef("repo", "v1", "dags/d7.py"),
                                   SourceRef("repo", "v2", "dags/d7.py")]


def test_tasks_and_edges_are_rows_that_sql_can_query(store: GraphStore) -> None:
    store.record(B)
    dag, graph_version, edge, task = (store.tables.dag, store.tables.graph_version,
                                      store.tables.edge, store.tables.task)
    with store.engine.connect() as conn:
        upstream_of_load = conn.execute(
            sa.select(edge.c.upstream)
            .join(graph_version, graph_version.c.id == edge.c.graph_version_id)
            .join(dag, dag.c.id == graph_version.c.dag_pk)
            .where(dag.c.dag_id == "etl", edge.c.downstream == "load")
        ).scalars().all()
        tasks = conn.execute(sa.select(task.c.task_id).order_by(task.c.task_id)).scalars()
        assert list(tasks) == ["extract", "load", "notify", "transform"]
    assert upstream_of_load == ["transform"]


def test_latest_of_all_dags_is_one_query(store: GraphStore) -> None:
    store.record_many([A, Graph.of("b", ["x"]), Graph.of("c", ["y", "z"], [("y", "z")])])
    store.record(B)
    with statements(store) as seen:
        latest = store.latest_all()
    assert len([s for s in seen if s.upper().startswith("SELECT")]) == 1
    assert [(v.dag_id, v.number, v.task_count) for v in latest] == [
        ("b", 1, 1), ("c", 1, 2), ("etl", 2, 4)]
    assert all(v.latest for v in latest)


def test_all_latest_graphs_are_three_queries(store: GraphStore) -> None:
    many = [Graph.of(f"dag_{i:03}", ["a", "b", "c"], [("a", "b"), ("b", "c")]) for i in range(120)]
    store.record_many([A, *many])
    store.record(B)
    with statements(store) as seen:
        graphs = store.latest_graphs()
    assert len([s for s in seen if s.upper().startswith("SELECT")]) == 3
    assert len(graphs) == 121
    assert graphs["etl"] == B
    assert graphs["dag_007"] == many[7]
    assert graphs == {d: store.graph(d) for d in graphs}


def test_diff_two_versions(store: GraphStore) -> None:
    store.record(A)
    store.record(Graph.of("etl", ["extract", Task("transform", "Spark"), "notify"],
                          [("extract", "transform"), ("transform", "notify")]))
    changes = store.diff("etl", 1, 2)
    assert changes.tasks_added == ("notify",)
    assert changes.tasks_removed == ("load",)
    assert changes.tasks_changed == ("transform",)
    assert [(e.upstream, e.downstream) for e in changes.edges_added] == [("transform", "notify")]
    assert [(e.upstream, e.downstream) for e in changes.edges_removed] == [("transform", "load")]


def test_unknown_dag_and_version_say_so(store: GraphStore) -> None:
    with pytest.raises(GraphNotFoundError, match="no DAG 'nope'"):
        store.latest("nope")
    store.record(A)
    with pytest.raises(GraphNotFoundError, match="has no version 7"):
        store.graph("etl", 7)
    with pytest.raises(GraphNotFoundError, match="no run 'r9'"):
        store.run("r9")


def test_timestamps_come_back_as_utc(store: GraphStore) -> None:
    version = store.record(A).version
    stored = store.latest("etl").created_at
    assert stored.tzinfo == timezone.utc
    assert abs((stored - version.created_at).total_seconds()) < 1e-3


# -- runs --------------------------------------------------------------------------------------

def test_a_run_keeps_its_graph_when_the_dag_changes(store: GraphStore) -> None:
    store.record_extraction("repo", "v1", [("etl.py", A)], {}, file_count=1)
    pin = store.pin_run("manual__1", "etl")
    assert (pin.version.number, pin.source) == (1, SourceRef("repo", "v1", "etl.py"))
    store.record_extraction("repo", "v2", [("etl.py", B)], {}, file_count=1)
    store.record_extraction("repo", "v3", [("etl.py", C)], {}, file_count=1)
    assert store.run_graph("manual__1", "etl") == A
    shown = store.run("manual__1")
    assert (shown.version.number, shown.version.latest) == (1, False)
    assert shown.source == SourceRef("repo", "v1", "etl.py")
    # pinning again is idempotent; moving a run to another graph is refused
    assert store.pin_run("manual__1", "etl").version.number == 1
    with pytest.raises(RunAlreadyPinnedError, match="pinned to version 1"):
        store.pin_run("manual__1", "etl", number=3)
    # a new run gets the latest
    assert store.pin_run("manual__2", "etl").version.number == 3


def test_same_run_id_in_two_dags_needs_the_dag(store: GraphStore) -> None:
    store.record_many([A, Graph.of("other", ["x"])])
    store.pin_run("scheduled__2024", "etl")
    store.pin_run("scheduled__2024", "other")
    with pytest.raises(GraphNotFoundError, match="several DAGs"):
        store.run("scheduled__2024")
    assert store.run("scheduled__2024", "other").dag_id == "other"



def test_runs_of_one_version_a_page_at_a_time(store: GraphStore) -> None:
    from dagfetch.graphs import runs

    store.record_extraction("repo", "v1", [("etl.py", A)], {}, file_count=1)
    store.pin_run("r1", "etl")
    store.pin_run("r2", "etl")
    store.record_extraction("repo", "v2", [("etl.py", B)], {}, file_count=1)
    store.pin_run("r3", "etl")
    with store.engine.connect() as conn:
        every = runs.list_runs(conn, store.tables, "etl")
        assert [pin.run_id for pin in every] == ["r3", "r2", "r1"]
        first = runs.list_runs(conn, store.tables, "etl", number=1)
        assert [(pin.run_id, pin.version.number) for pin in first] == [("r2", 1), ("r1", 1)]
        assert first[0].source == SourceRef("repo", "v1", "etl.py")
        page = runs.list_runs(conn, store.tables, "etl", limit=1, offset=1)
        assert [pin.run_id for pin in page] == ["r2"]
        assert runs.count_runs(conn, store.tables, "etl") == 3
        assert runs.count_runs(conn, store.tables, "etl", number=2) == 1
        assert runs.count_runs(conn, store.tables, "other") == 0

# -- gc ----------------------------------------------------------------------------------------

def test_gc_keeps_latest_pinned_and_newest_k(store: GraphStore) -> None:
    graphs = [Graph.of("etl", [f"t{j}" for j in range(i + 1)]) for i in range(6)]
    store.record(graphs[0])
    store.pin_run("r1", "etl")  # version 1 is pinned
    for g in graphs[1:]:
        store.record(g)
    store.record(graphs[2])  # back to version 3: the latest
    assert sorted(store.gc(keep=2, dry_run=True).removed) == [("etl", 2), ("etl", 4)]
    assert len(store.history("etl")) == 6
    result = store.gc(keep=2)
    # kept: 6, 5 (newest two), 3 (latest), 1 (pinned); removed: 4, 2
    assert sorted(result.removed) == [("etl", 2), ("etl", 4)]
    assert [v.number for v in store.history("etl")] == [1, 3, 5, 6]
    assert count_rows(store, store.tables.task) == 1 + 3 + 5 + 6
    assert store.run_graph("r1") == graphs[0]
    # a removed graph coming back gets a new number, never a reused one
    assert store.record(graphs[1]).version.number == 7


# -- transactions ------------------------------------------------------------------------------

def test_a_failed_write_leaves_nothing_half_recorded(store: GraphStore) -> None:
    def explode(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        inserting = statement.lstrip().upper().startswith("INSERT INTO")
        if inserting and store.tables.edge.name in statement:
            raise RuntimeError("disk full (injected)")

    sa.event.listen(store.engine, "before_cursor_execute", explode)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            store.record_extraction("repo", "v1", [("etl.py", A)], {"bad.py": "Traceback"},
                                    file_count=2)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", explode)
    for table in store.tables.all():
        assert count_rows(store, table) == 0, table.name
    assert not store.is_extracted("repo", "v1")
    # and the same write succeeds afterwards
    assert store.record_extraction("repo", "v1", [("etl.py", A)], {}, file_count=1).recorded


# -- extraction bookkeeping, import errors, publishing -----------------------------------------

def test_a_source_version_is_recorded_once(store: GraphStore) -> None:
    assert not store.is_extracted("repo", "v1")
    first = store.record_extraction("repo", "v1", [("etl.py", A)],
                                    {"broken.py": "Traceback...\nValueError: boom"}, file_count=2)
    assert first.recorded and store.is_extracted("repo", "v1")
    with statements(store) as seen:
        second = store.record_extraction("repo", "v1", [("etl.py", B)], {}, file_count=1)
    assert not second.recorded and writes(seen) == []
    assert store.latest("etl").number == 1
    errors = store.import_errors()
    assert [(e.repo_id, e.version_id, e.path) for e in errors] == [("repo", "v1", "broken.py")]
    assert "ValueError: boom" in errors[0].message


def test_import_errors_default_to_each_repos_newest_extraction(store: GraphStore) -> None:
    store.record_extraction("repo", "v1", [], {"a.py": "err a"}, file_count=1)
    store.record_extraction("repo", "v2", [], {"b.py": "err b"}, file_count=1)
    store.record_extraction("other", "x1", [], {"c.py": "err c"}, file_count=1)
    assert [(e.repo_id, e.path) for e in store.import_errors()] == [("other", "c.py"),
                                                                   ("repo", "b.py")]
    assert [e.path for e in store.import_errors("repo", "v1")] == ["a.py"]


def test_publish_replaces_the_published_version(store: GraphStore) -> None:
    assert store.published("repo") is None
    store.publish("repo", "v1")
    store.publish("repo", "v2")
    assert store.published("repo") == "v2"
    assert count_rows(store, store.tables.published) == 1


# -- schema ------------------------------------------------------------------------------------

def test_migrations_create_exactly_the_declared_schema(fresh_store: GraphStore) -> None:
    prefix = fresh_store.tables.prefix
    with fresh_store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": lambda name, type_, _: type_ != "table" or name.startswith(prefix),
            "compare_type": True,
            "version_table": fresh_store.tables.version_table,
        })
        differences = compare_metadata(context, fresh_store.tables.metadata)
        tables = [n for n in sa.inspect(conn).get_table_names() if n.startswith(prefix)]
    assert differences == []
    assert f"{prefix}alembic_version" in tables  # the store's own history table
    assert "alembic_version" not in tables
    assert len(tables) == len(fresh_store.tables.all()) + 1


def test_an_old_schema_is_refused_until_upgraded(backend_url: str) -> None:
    prefix = unique_prefix()
    with pytest.raises(SchemaNotReadyError, match="dagfetch db upgrade"):
        GraphStore(backend_url, prefix=prefix, upgrade=False)
    store = GraphStore(backend_url, prefix=prefix)  # upgrades
    try:
        store.upgrade()  # again: nothing to do
        reopened = GraphStore(backend_url, prefix=prefix, upgrade=False)
        reopened.close()
        from dagfetch.graphs.database import current_revision
        assert current_revision(store.engine, store.tables) == head_revision()
    finally:
        store.drop()
        store.close()


def test_two_prefixes_in_one_database_do_not_see_each_other(
    store: GraphStore, fresh_store: GraphStore
) -> None:
    store.record(A)
    assert fresh_store.dag_ids() == []
    fresh_store.record(B)
    assert store.graph("etl") == A and fresh_store.graph("etl") == B


def test_value_types_keep_their_old_import_path_and_tables_their_old_name(
    store: GraphStore,
) -> None:
    from dagfetch.graphs import model
    from dagfetch.graphs import store as store_module

    for name in ("SourceRef", "GraphVersion", "RecordResult", "RunPin", "ImportErrorRecord",
                 "Extraction", "GcResult"):
        assert getattr(store_module, name) is getattr(model, name), name
    assert store.t is store.tables


def test_a_bad_prefix_is_a_config_error() -> None:
    from dagfetch.errors import ConfigError

    with pytest.raises(ConfigError, match="table prefix"):
        GraphStore("sqlite://", prefix="drop table;")


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql+psycopg://dagfetch:s3cret-pw@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(GraphStoreError) as info:
        GraphStore(url)
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "127.0.0.1:1" in message and "***" in message


def test_a_schema_from_a_newer_dagfetch_is_refused(fresh_store: GraphStore) -> None:
    with fresh_store.engine.begin() as conn:
        history = sa.table(fresh_store.tables.version_table, sa.column("version_num"))
        conn.execute(sa.update(history).values(version_num="9999"))
    with pytest.raises(SchemaNotReadyError, match=r"9999.*newer dagfetch"):
        fresh_store.upgrade()
    with pytest.raises(SchemaNotReadyError, match="is at schema 9999"):
        GraphStore(fresh_store.engine.url, prefix=fresh_store.tables.prefix, upgrade=False)


def test_database_failures_are_store_errors_naming_the_database(fresh_store: GraphStore) -> None:
    fresh_store.drop()  # the tables vanish under an open store
    with pytest.raises(GraphStoreError, match=r"^database .*: ") as info:
        fresh_store.latest_all()
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)
    with pytest.raises(GraphStoreError, match=r"^database "):
        fresh_store.record(A)
    fresh_store.upgrade()  # so the fixture can drop it again
