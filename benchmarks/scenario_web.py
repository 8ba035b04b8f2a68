"""The web server (``dagfetch serve``): how long its heaviest answers take, in-process, and how
many SQL statements each one costs.

A store of many DAGs (and one of ten times as many), one large DAG, and a repository of many
files with two versions that differ in a tenth of them. The target is the issue's point: a
page over every DAG costs the same few statements whatever the number of DAGs, because it
reads the database in a few queries instead of one per DAG (or parsing DAG files).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Config, Row, Target, row
from benchmarks.scenario_graphs import counting, make_graphs
from dagfetch.graphs import Graph, GraphStore, SourceRef
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace

SCENARIO = "web"


def _repository(root: Path, files: int, changed: int) -> tuple[Workspace, list[str]]:
    remote = root / "remote"
    workspace = Workspace(parse_manifest({"dag_repositories": {"r": {"url": str(remote)}}}),
                          cache_root=root / "cache")
    versions = []
    for generation in (0, 1):
        for index in range(files):
            path = remote / f"dags/group_{index % 20:02}/dag_{index:05}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            edit = generation and index < changed
            lines = [f"# DAG file {index}"] + [f"task_{t} = {t * (2 if edit else 1)}"
                                               for t in range(40)]
            path.write_text("\n".join(lines) + "\n")
        result = workspace.sync_one("r")
        assert result.version_id is not None
        versions.append(result.version_id)
    return workspace, versions


def _store(url: str, dags: int, tasks: int, version_id: str) -> GraphStore:
    store = GraphStore(url, prefix=f"bench{uuid.uuid4().hex[:8]}_")
    items: list[Graph | tuple[Graph, SourceRef | None]] = [
        (graph, SourceRef("r", version_id, f"dags/{graph.dag_id}.py"))
        for graph in make_graphs(dags, tasks)]
    store.record_many(items)
    return store


def web(config: Config) -> tuple[list[Row], list[Target]]:
    try:
        from fastapi.testclient import TestClient

        from dagfetch.web import create_app
    except ImportError as exc:
        print(f"web skipped: the web extra is not installed ({exc})")
        return [], []
    few, many, tasks = (10, 100, 10) if config.quick else (100, 1_000, 30)
    big = 100 if config.quick else 2_000
    files, changed = (60, 6) if config.quick else (2_000, 200)
    workspace, (old, new) = _repository(config.workdir, files, changed)
    url = f"sqlite:///{config.workdir / 'graphs.db'}"
    stores = {count: _store(url, count, tasks, new) for count in (few, many)}
    stores[many].record(Graph.of("big", *_big_graph(big)), SourceRef("r", new, "dags/big.py"))
    rows: list[Row] = []
    for count, store in stores.items():
        with TestClient(create_app(workspace, store)) as client:
            answers = [(f"GET /api/dags ({count} DAGs)", "/api/dags?limit=500"),
                       (f"GET /dags page ({count} DAGs)", "/dags")]
            if count == many:
                answers += [
                    (f"GET /api/dags/big/graph ({big} tasks)", "/api/dags/big/graph"),
                    (f"GET /dags/big page ({big} tasks)", "/dags/big"),
                    (f"GET /api/repos/r/diff ({changed} of {files} files)",
                     f"/api/repos/r/diff?old={old}&new={new}"),
                    (f"GET /repos/r/diff page ({changed} of {files} files)",
                     f"/repos/r/diff?old={old}&new={new}"),
                    (f"GET /repos/r/versions/... tree ({files} files)",
                     f"/repos/r/versions/{new}"),
                ]
            for name, path in answers:
                rows.append(row(SCENARIO, name, _get(client, path), config,
                                count=_statements(store)))
    rows.append(row(SCENARIO, f"Workspace.diff, files only ({files} files)",
                    lambda: workspace.diff("r", old, new, patch=False), config))
    rows.append(row(SCENARIO, f"Workspace.diff with lines ({changed} changed)",
                    lambda: workspace.diff("r", old, new), config))
    for store in stores.values():
        store.drop()
        store.close()

    def same_statements(page: str) -> Callable[[dict[str, Row]], tuple[bool, str]]:
        def check(by_name: dict[str, Row]) -> tuple[bool, str]:
            counts = [by_name[f"{page} ({n} DAGs)"].extra["statements"] for n in (few, many)]
            return counts[0] == counts[1], f"{counts[0]} statements for {few} DAGs, " \
                f"{counts[1]} for {many}"
        return check

    targets = [Target(SCENARIO, f"{page} costs the same statements for {many} DAGs as for {few}",
                      same_statements(page)) for page in ("GET /api/dags", "GET /dags page")]
    return rows, targets


def _big_graph(tasks: int) -> tuple[list[str], list[tuple[str, str]]]:
    names = [f"step_{t:04}" for t in range(tasks)]
    # layers of ten tasks, each task feeding two of the next layer
    edges = [(names[t], names[t + 10 + k]) for t in range(tasks - 12) for k in (0, 1)]
    return names, edges


def _get(client: Any, path: str) -> Callable[[], None]:
    def fetch() -> None:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])

    return fetch


def _statements(store: GraphStore) -> Callable[[Callable[[], Any]], dict[str, Any]]:
    def statements(run: Callable[[], Any]) -> dict[str, Any]:
        with counting(store.engine) as counts:
            run()
        return {"statements": counts["statements"]}

    return statements


SCENARIOS = {"web": web}
