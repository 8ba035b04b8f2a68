"""Real concurrent writers (separate processes, separate connections) on all three backends.

Two processes recording the same new graph at the same moment end with exactly one version;
different new graphs get different numbers; one source version is recorded once. On
PostgreSQL and MariaDB the racers are forced to interleave (all read before any writes), so
the unique-key conflict and the retry really happen, and the test checks that they did.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest

from dagfetch.graphs import Graph, GraphStore
from tests.graphs.racers import serve

A = Graph.of("etl", ["a", "b"], [("a", "b")])
B = Graph.of("etl", ["a", "b", "c"], [("a", "b"), ("b", "c")])
C = Graph.of("etl", ["a", "c"], [("a", "c")])

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="session")
def racers() -> Iterator[tuple[list[Any], Any]]:
    """Two long-lived racer processes sharing one (cyclic) barrier."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    out = ctx.Queue()
    queues = [ctx.Queue() for _ in range(2)]
    procs = [ctx.Process(target=serve, args=(q, barrier, out), daemon=True) for q in queues]
    for p in procs:
        p.start()
    yield queues, out
    for q in queues:
        q.put(None)
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()


def run_racers(
    store: GraphStore, racers: tuple[list[Any], Any], job: str, payloads: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    queues, out = racers
    url = store.engine.url.render_as_string(hide_password=False)
    interleave = store.engine.dialect.name != "sqlite"
    for q, payload in zip(queues, payloads, strict=True):
        q.put((url, store.tables.prefix, job, payload, interleave))
    results = [out.get(timeout=90) for _ in payloads]
    errors = [r[1] for r in results if r[0] == "error"]
    assert not errors, errors
    return results


def test_two_processes_recording_the_same_new_graph_make_one_version(
    store: GraphStore, racers: tuple[list[Any], Any]
) -> None:
    store.record(A)
    results = run_racers(store, racers, "record", [B.to_json(), B.to_json()])
    assert sorted(r[1] for r in results) == [2, 2]
    assert sorted(r[2] for r in results) == [False, True]  # one created it, one found it
    assert [v.number for v in store.history("etl")] == [1, 2]
    assert store.graph("etl") == B
    if store.engine.dialect.name != "sqlite":
        assert sum(r[3] for r in results) >= 3, "the conflict path (a retry) was not exercised"


def test_a_brand_new_dag_recorded_twice_at_once_is_one_dag(
    store: GraphStore, racers: tuple[list[Any], Any]
) -> None:
    results = run_racers(store, racers, "record", [A.to_json(), A.to_json()])
    assert sorted((r[1], r[2]) for r in results) == [(1, False), (1, True)]
    assert store.dag_ids() == ["etl"]
    assert len(store.history("etl")) == 1


def test_different_new_graphs_at_once_get_different_numbers(
    store: GraphStore, racers: tuple[list[Any], Any]
) -> None:
    store.record(A)
    results = run_racers(store, racers, "record", [B.to_json(), C.to_json()])
    assert sorted(r[1] for r in results) == [2, 3]
    assert all(r[2] for r in results)
    assert {store.graph("etl", 2), store.graph("etl", 3)} == {B, C}


def test_one_source_version_extracted_by_two_nodes_is_recorded_once(
    store: GraphStore, racers: tuple[list[Any], Any]
) -> None:
    payload = {"graph": A.to_json(), "version": "v1"}
    results = run_racers(store, racers, "extract", [payload, payload])
    assert sorted(r[1] for r in results) == [False, True]
    assert len(store.sources("etl")) == 1
    assert store.is_extracted("repo", "v1")
