"""The graph store over time, on SQLite, PostgreSQL and MariaDB (see conftest.py): inactive
DAGs, graph gc of old source versions and of vanished DAGs, unstable DAGs."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import attrs
import pytest
import sqlalchemy as sa

from dagfetch.graphs import Graph, GraphNotFoundError, GraphStore, SourceRef, Task
from dagfetch.graphs.database import CHUNK
from tests.graphs.test_graph_store import count_rows, statements, writes


def chain(dag_id: str, task_ids: list[str]) -> Graph:
    return Graph.of(dag_id, [Task(t, "BashOperator") for t in task_ids],
                    list(itertools.pairwise(task_ids)))


def extract(store: GraphStore, repo: str, version: str, dags: Mapping[str, Graph],
            errors: Mapping[str, str] | None = None,
            hashes: Mapping[str, str] | None = None) -> list[str]:
    """Record an extraction whose file ``<dag>.py`` defines each DAG; the vanished ones."""
    graphs = [(f"{dag_id}.py", graph) for dag_id, graph in dags.items()]
    file_hashes = {f"{dag_id}.py": "0" * 64 for dag_id in dags}
    file_hashes.update(hashes or {})
    extraction = store.record_extraction(repo, version, graphs, dict(errors or {}),
                                         file_count=len(graphs) + len(errors or {}),
                                         file_hashes=file_hashes)
    assert extraction.recorded
    return list(extraction.vanished)


def listed(store: GraphStore, *, include_inactive: bool = False) -> list[tuple[str, bool]]:
    return [(v.dag_id, v.active) for v in store.latest_all(include_inactive=include_inactive)]


A, B, C = chain("a", ["x", "y"]), chain("b", ["x", "y"]), chain("c", ["x", "y"])


# -- inactive DAGs -----------------------------------------------------------------------------

def test_a_dag_gone_from_its_repository_is_inactive_until_it_comes_back(
    store: GraphStore
) -> None:
    assert extract(store, "r", "v1", {"a": A, "b": B, "c": C}) == []
    # b's file was deleted; c's file fails to import: a broken file is not a deleted DAG
    assert extract(store, "r", "v2", {"a": A}, errors={"c.py": "SyntaxError"}) == ["b"]
    assert listed(store) == [("a", True), ("c", True)]
    assert listed(store, include_inactive=True) == [("a", True), ("b", False), ("c", True)]
    [gone] = store.inactive()
    assert gone.vanished_in == SourceRef("r", "v2", "b.py") and gone.vanished_at is not None
    assert not store.version("b").active and store.graph("b") == B  # its last graph stays
    assert not store.history("b")[-1].active
    assert list(store.latest_graphs()) == ["a", "c"]
    assert list(store.latest_graphs(include_inactive=True)) == ["a", "b", "c"]
    json_row = store.version("b").to_json()
    assert (json_row["active"], json_row["vanished_in"]["version_id"]) == (False, "v2")
    # not marked twice, and it comes back when a later version defines it again
    assert extract(store, "r", "v3", {"a": A}) == ["c"]
    assert store.version("b").vanished_in == SourceRef("r", "v2", "b.py")
    assert extract(store, "r", "v4", {"a": A, "b": B}) == []
    assert store.version("b").active and store.version("b").number == 1


def test_going_back_to_a_version_extracted_before_decides_again(store: GraphStore) -> None:
    extract(store, "r", "v1", {"a": A, "b": B})
    extract(store, "r", "v2", {"a": A})
    assert store.mark_current("r", "v1") == []  # a revert: b is defined again
    assert store.version("b").active
    assert store.mark_current("r", "v2") == ["b"]
    assert store.version("b").vanished_in == SourceRef("r", "v2", "b.py")
    assert store.mark_current("r", "never") is None


def test_only_the_repository_that_defined_a_dag_last_makes_it_inactive(
    store: GraphStore
) -> None:
    extract(store, "one", "v1", {"a": A, "moved": chain("moved", ["x"])})
    extract(store, "two", "v1", {"c": C})
    assert extract(store, "two", "v2", {}) == ["c"]  # two's own DAG
    assert listed(store) == [("a", True), ("moved", True)]
    # `moved` goes to repository two; one's next version without it leaves it alone
    extract(store, "two", "v3", {"moved": chain("moved", ["x", "y"])})
    assert extract(store, "one", "v2", {"a": A}) == []
    assert store.version("moved").active
    store.record(chain("manual", ["x"]))  # recorded by hand: no owner, never inactive
    assert extract(store, "one", "v3", {"a": A}) == []
    assert [d for d, _ in listed(store)] == ["a", "manual", "moved"]


def test_recording_an_inactive_dag_by_hand_makes_it_active(store: GraphStore) -> None:
    extract(store, "r", "v1", {"a": A, "b": B})
    extract(store, "r", "v2", {"a": A})
    assert not store.version("b").active
    store.record(B)
    assert store.version("b").active


def test_an_unchanged_repository_writes_no_dag_row(store: GraphStore) -> None:
    extract(store, "r", "v1", {"a": A, "b": B})
    dag = store.tables.dag.name
    with statements(store) as seen:
        extract(store, "r", "v2", {"a": A, "b": B})
    assert not any(dag + " " in s or s.endswith(dag) for s in writes(seen)
                   if s.upper().startswith("UPDATE")), writes(seen)


# -- gc ------------------------------------------------------------------------------------------

def rows(store: GraphStore) -> dict[str, int]:
    return {table.name.removeprefix(store.tables.prefix): count_rows(store, table)
            for table in store.tables.all()}


def test_gc_removes_old_import_errors_and_links_beyond_the_window(store: GraphStore) -> None:
    for n in range(1, 7):
        extract(store, "r", f"v{n}", {"a": A, "b": B}, errors={"broken.py": f"boom {n}"})
    store.pin_run("run1", "a", source=SourceRef("r", "v2", "a.py"))
    store.publish("r", "v1")
    before = rows(store)
    planned = store.gc(keep_sources=2, kept_sources={"r": {"v3"}}, dry_run=True)
    assert rows(store) == before  # a dry run removes nothing
    result = store.gc(keep_sources=2, kept_sources={"r": {"v3"}})
    assert result == attrs.evolve(planned, dry_run=False)
    # v5, v6: the window; v1 published, v2 pinned by a run, v3 kept by the cache
    assert result.source_versions == (("r", "v4"),)
    assert result.import_errors == 1 and result.links == 2
    assert [e.version_id for e in store.import_errors("r", "v4")] == []
    assert [e.message for e in store.import_errors("r")] == ["boom 6"]
    assert store.is_extracted("r", "v3") and not store.is_extracted("r", "v4")
    # again: nothing left to do
    assert store.gc(keep_sources=2, kept_sources={"r": {"v3"}}).source_versions == ()


def test_gc_keeps_the_newest_link_of_each_graph_version_it_keeps(store: GraphStore) -> None:
    extract(store, "r", "v1", {"a": A})
    extract(store, "r", "v2", {"a": chain("a", ["x", "y", "z"])})
    for n in range(3, 6):
        extract(store, "r", f"v{n}", {"a": chain("a", ["x", "y", "z"])})
    result = store.gc(keep=5, keep_sources=1)
    # version 1 of a stays (keep=5) and still says which code produced it
    assert store.sources("a", 1) == [SourceRef("r", "v1", "a.py")]
    assert store.sources("a", 2) == [SourceRef("r", "v5", "a.py")]
    assert sorted(result.source_versions) == [("r", "v2"), ("r", "v3"), ("r", "v4")]
    # v1's row stays for that link, but no longer counts as extracted: back there, it is
    # extracted again
    assert not store.is_extracted("r", "v1") and store.is_extracted("r", "v5")
    assert extract(store, "r", "v1", {"a": A}) == []
    assert store.version("a").number == 1


def test_gc_forgets_inactive_dags_beyond_the_window_unless_a_run_pins_them(
    store: GraphStore
) -> None:
    extract(store, "r", "v1", {"a": A, "b": B, "c": C})
    store.record_many([(chain("c", ["x", "y", "w"]), SourceRef("r", "v1", "c.py"))])
    store.pin_run("run-c", "c", number=1)
    extract(store, "r", "v2", {"a": A})  # b and c vanish
    assert store.gc(keep_sources=2).forgotten == ()  # v2 is inside the window
    extract(store, "r", "v3", {"a": A})
    result = store.gc(keep_sources=1)
    assert result.forgotten == ("b",)
    assert sorted(result.removed) == [("b", 1), ("c", 2)]
    with pytest.raises(GraphNotFoundError):
        store.version("b")
    # c keeps the version its run is pinned to, which is now its latest
    assert (store.version("c").number, store.run_graph("run-c", "c")) == (1, C)
    assert [v.number for v in store.history("c")] == [1]
    # b comes back: a new DAG for the store
    extract(store, "r", "v4", {"a": A, "b": B})
    assert store.version("b").number == 1 and store.version("b").active


def test_gc_deletes_children_first_in_chunks(store: GraphStore) -> None:
    many = CHUNK * 2 + 10
    first = [chain(f"d{i:04d}", ["x", "y"]) for i in range(many)]
    second = [chain(f"d{i:04d}", ["x", "y", "z"]) for i in range(many)]
    third = [chain(f"d{i:04d}", ["x", "z"]) for i in range(many)]
    errors = {f"broken{i}.py": "boom" for i in range(many)}
    for version, graphs in (("v1", first), ("v2", second), ("v3", third)):
        store.record_extraction("r", version, [(f"{g.dag_id}.py", g) for g in graphs], errors,
                                file_count=many * 2)
    result = store.gc(keep=1, keep_sources=1)
    assert len(result.removed) == 2 * many and result.import_errors == 2 * many
    counts = rows(store)
    assert (counts["graph_version"], counts["import_error"], counts["dag_source"],
            counts["source_version"], counts["task"]) == (many, many, many, 1, 2 * many)


def test_the_databases_enforce_the_foreign_keys_gc_must_respect(store: GraphStore) -> None:
    """So a gc that deleted a parent before its children would fail here, not pass."""
    store.record(A)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(store.tables.graph_version.delete())


def test_gc_never_leaves_a_row_pointing_at_nothing(store: GraphStore) -> None:
    """Every foreign key of the schema, checked by query after a gc that removed some of
    everything (the databases enforce them too: SQLite with PRAGMA foreign_keys=ON)."""
    for n in range(1, 8):
        dags = {"a": chain("a", ["x", f"t{n % 3}"]), f"e{n}": chain(f"e{n}", ["x"])}
        extract(store, "r", f"v{n}", dags, errors={"broken.py": "boom"})
        if n == 3:
            store.pin_run("run3", "e3")
    result = store.gc(keep=1, keep_sources=2)
    assert result.removed and result.forgotten and result.source_versions
    with store.engine.connect() as conn:
        for table in store.tables.all():
            for fk in table.foreign_key_constraints:
                [(column, target)] = [(e.parent, e.column) for e in fk.elements]
                orphans = conn.execute(
                    sa.select(sa.func.count()).select_from(table)
                    .where(column.is_not(None),
                           ~sa.exists().where(target == column))).scalar_one()
                assert orphans == 0, fk.name


# -- unstable DAGs -------------------------------------------------------------------------------

def test_a_dag_whose_graph_changes_while_its_file_does_not_is_unstable(
    store: GraphStore
) -> None:
    for n in range(6):
        extract(store, "r", f"v{n}", {
            "clock": chain("clock", ["start", f"extract_{1700000000 + n}", "end"]),
            "rewired": Graph.of("rewired", ["a", "b", "c"], [("a", "b") if n % 2 else ("a", "c")]),
            "edited": chain("edited", ["x", f"step{n}"]),  # a real edit every time
            "steady": A,
        }, hashes={"edited.py": f"{n:064d}"})
    found = {item.dag_id: item for item in store.unstable_dags("r")}
    assert sorted(found) == ["clock", "rewired"]
    clock = found["clock"]
    assert (clock.repo_id, clock.path, clock.changes, clock.pairs) == ("r", "clock.py", 5, 5)
    assert clock.last.tasks_added == ("extract_1700000005",)
    assert "task ids added and removed in 5 of 5 changes" in clock.what[0]
    assert "'extract_1700000005'" in clock.describe()
    assert "edges rewired among the same tasks in 5 of 5" in found["rewired"].what[0]
    assert [i.dag_id for i in store.unstable_dags("r", dag_ids=["clock", "steady"])] == ["clock"]
    many = ["clock", *(f"other{i}" for i in range(CHUNK + 1))]  # more than one IN list takes
    assert [i.dag_id for i in store.unstable_dags("r", dag_ids=many)] == ["clock"]
    assert store.unstable_dags("r", window=3) == []  # 2 changes: below the threshold
    assert store.unstable_dags("other") == []


def test_links_without_a_file_hash_are_not_counted(store: GraphStore) -> None:
    for n in range(6):
        store.record_extraction("r", f"v{n}", [("c.py", chain("c", ["x", f"t{n}"]))], {},
                                file_count=1)
    assert store.unstable_dags() == []


# -- runs ----------------------------------------------------------------------------------------

def test_runs_are_listed_newest_first_and_released_once(store: GraphStore) -> None:
    extract(store, "r", "v1", {"a": A, "b": B})
    store.pin_run("r1", "a")
    store.pin_run("r2", "b")
    store.pin_run("r3", "a", source=None)
    assert [(p.run_id, p.dag_id) for p in store.runs()] == [("r3", "a"), ("r2", "b"),
                                                             ("r1", "a")]
    assert [p.run_id for p in store.runs("a")] == ["r3", "r1"]
    assert store.runs()[-1].source == SourceRef("r", "v1", "a.py")
    released = store.release_run("r1")
    assert released.released_at is not None and store.run("r1").released_at is not None
    assert store.release_run("r1").released_at == released.released_at
    assert [p.released_at is None for p in store.runs()] == [True, True, False]
    with pytest.raises(GraphNotFoundError, match="no run 'r9'"):
        store.release_run("r9")
