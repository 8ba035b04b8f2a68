"""Canonical form, content hash, validation and diff of graphs (no database)."""

from __future__ import annotations

import pytest

from dagfetch.graphs import Edge, Graph, InvalidGraphError, Task, diff


def test_hash_ignores_declaration_order() -> None:
    a = Graph.of("etl", ["extract", "load", "transform"],
                 [("extract", "transform"), ("transform", "load")])
    b = Graph.of("etl", [Task("transform"), Task("load"), Task("extract")],
                 [Edge("transform", "load"), ("extract", "transform"), ("extract", "transform")])
    assert a == b
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64


@pytest.mark.parametrize("change", [
    lambda: Graph.of("etl", ["a", "b"], []),                          # edge removed
    lambda: Graph.of("etl", ["a", "b"], [("b", "a")]),                # edge reversed
    lambda: Graph.of("etl", [Task("a", "Bash"), "b"], [("a", "b")]),  # task kind changed
    lambda: Graph.of("etl", [Task("a", attributes={"retries": 2}), "b"], [("a", "b")]),
    lambda: Graph.of("other", ["a", "b"], [("a", "b")]),              # another DAG
])
def test_any_change_changes_the_hash(change) -> None:  # type: ignore[no-untyped-def]
    base = Graph.of("etl", ["a", "b"], [("a", "b")])
    assert change().content_hash != base.content_hash


@pytest.mark.parametrize(("tasks", "edges", "message"), [
    (["a", "a"], [], "task 'a' appears twice"),
    (["a"], [("a", "zz")], "unknown task 'zz'"),
    (["a"], [("a", "a")], "depends on itself"),
    ([""], [], "task_id must be a non-empty string"),
    (["x" * 251], [], "longer than 250"),
])
def test_invalid_graphs_are_refused_with_the_reason(tasks, edges, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidGraphError, match=message):
        Graph.of("etl", tasks, edges)


def test_attributes_must_be_plain_values() -> None:
    with pytest.raises(InvalidGraphError, match="only strings, numbers"):
        Task("a", attributes={"callback": object()})  # type: ignore[dict-item]
    with pytest.raises(InvalidGraphError, match="cannot be stored"):
        Task("a", attributes={"x": float("nan")})


def test_json_round_trip() -> None:
    g = Graph.of("etl", [Task("a", "Bash", {"retries": 3, "pool": None}), "b"], [("a", "b")])
    assert Graph.from_json(g.to_json()) == g
    with pytest.raises(InvalidGraphError, match="not a graph document"):
        Graph.from_json({"dag_id": "x"})


def test_diff_names_tasks_and_edges() -> None:
    old = Graph.of("etl", ["t1", "t2", Task("t3", "Bash")], [("t1", "t2"), ("t2", "t3")])
    new = Graph.of("etl", ["t1", "t2", Task("t3", "Python"), "t4", "t5"],
                   [("t1", "t2"), ("t2", "t4"), ("t4", "t5")])
    d = diff(old, new)
    assert d.tasks_added == ("t4", "t5")
    assert d.tasks_removed == ()
    assert d.tasks_changed == ("t3",)
    assert d.edges_added == (Edge("t2", "t4"), Edge("t4", "t5"))
    assert d.edges_removed == (Edge("t2", "t3"),)
    assert not d.empty
    assert diff(new, new).empty
