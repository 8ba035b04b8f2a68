"""The graph store over time: 1,000 syncs of a local repository whose DAGs change, appear
and vanish each round, each recorded as an extraction, with gc every ``GC_EVERY`` rounds.
What is measured is the number of rows per table: it must stay within what gc keeps
(:func:`kept_bound`), not grow with the number of syncs.

Each round the repository gets a new version: of 20 long-lived DAGs, about one in ten gets a
new graph (its last task renamed); one short-lived DAG appears and the one from ``LIFETIME``
rounds ago is deleted; a broken file fails to import in every version (an import-error row
per extraction); a helper file changes. The sync, the cache and its gc, the store and its gc
are dagfetch's own; the extraction stands in for the parser with the graphs the round's DAG
files define (the parser's speed is the extraction scenario's subject, and it does not change
what is recorded).
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Config, Row, Target
from dagfetch.graphs.model import Graph, Task
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.graphs.store import GraphStore
from dagfetch.testing import LocalRemote, one_repository

REPO = "changing"
STABLE = 20
LIFETIME = 5
GC_EVERY = 10
KEEP_GRAPHS = 5
KEEP_SOURCES = 10
KEEP_VERSIONS = 3
BROKEN = "broken.py"


def dag_file(graph: Graph) -> bytes:
    """A dag-shape DAG file defining ``graph`` (what the real parser would read)."""
    lines = ["class T:", "    def __init__(self, i, down=()):",
             "        self.task_id, self.downstream_task_ids = i, set(down)",
             "class D:", f"    dag_id = {graph.dag_id!r}", "    tasks = ["]
    for task in graph.tasks:
        lines.append(f"        T({task.task_id!r}, {graph.downstream(task.task_id)!r}),")
    lines += ["    ]", "dag = D()"]
    return ("\n".join(lines) + "\n").encode()


class ChangingRepository:
    """The repository's DAGs round after round (seeded: every run writes the same rounds)."""

    def __init__(self, remote: LocalRemote) -> None:
        self.remote = remote
        self.random = random.Random(15)  # noqa: S311 - a reproducible workload, not a secret
        self.changes = {f"stable_{i:02d}": 0 for i in range(STABLE)}
        self.transient: list[int] = []
        remote.write(BROKEN, b"import missing_module_of_this_repository\n")

    def graphs(self) -> dict[str, Graph]:
        graphs = {}
        for dag_id, changes in self.changes.items():
            names = ["extract", "transform", f"load_{changes}"]
            graphs[dag_id] = Graph.of(dag_id, [Task(n, "BashOperator") for n in names],
                                      list(itertools.pairwise(names)))
        for n in self.transient:
            graphs[f"short_{n:04d}"] = Graph.of(f"short_{n:04d}", ["only"])
        return graphs

    def advance(self, round_number: int) -> dict[str, Graph]:
        """Write round ``round_number``'s files; the graphs they define, by file path."""
        for dag_id in self.changes:
            if self.random.random() < 0.1:
                self.changes[dag_id] += 1
        self.transient.append(round_number)
        if len(self.transient) > LIFETIME:
            gone = self.transient.pop(0)
            self.remote.delete(f"short_{gone:04d}.py")
        graphs = self.graphs()
        for dag_id, graph in graphs.items():
            self.remote.write(f"{dag_id}.py", dag_file(graph))
        self.remote.write("helpers.txt", f"round {round_number}\n".encode())
        return {f"{dag_id}.py": graph for dag_id, graph in graphs.items()}


def kept_bound() -> dict[str, int]:
    """The most rows per table that what gc keeps can hold right after a gc: every active
    DAG with its ``KEEP_GRAPHS`` newest versions, the DAGs that vanished within the window,
    the window's extractions with their links and import errors, and one anchoring source
    row and link per kept graph version (see dagfetch.graphs.gc)."""
    inactive_in_window = KEEP_SOURCES
    dags = STABLE + LIFETIME + inactive_in_window
    versions = STABLE * KEEP_GRAPHS + LIFETIME + inactive_in_window
    return {
        "dag": dags,
        "graph_version": versions,
        "task": STABLE * KEEP_GRAPHS * 3 + LIFETIME + inactive_in_window,
        "edge": STABLE * KEEP_GRAPHS * 2,
        "source_version": KEEP_SOURCES + versions,
        "dag_source": KEEP_SOURCES * (STABLE + LIFETIME) + versions,
        "import_error": KEEP_SOURCES,
        "run": 0,
        "published": 0,
    }


def row_counts(store: GraphStore) -> dict[str, int]:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return {table.name.removeprefix(store.tables.prefix): int(conn.execute(
            sa.select(sa.func.count()).select_from(table)).scalar_one())
            for table in store.tables.all()}


def lifecycle(config: Config) -> tuple[list[Row], list[Target]]:
    rounds = 20 if config.quick else 1_000
    scenario = "graph lifecycle"
    root: Path = config.workdir
    remote = LocalRemote(root / "remote")
    repository = ChangingRepository(remote)
    workspace = one_repository(remote.url, root, repo_id=REPO, keep_versions=KEEP_VERSIONS)
    pipeline = GraphPipeline(workspace)  # the default SQLite store under the cache root
    store = pipeline.store
    samples: list[float] = []
    history: list[dict[str, Any]] = []
    removed = {"graph_versions": 0, "source_versions": 0, "import_errors": 0, "links": 0,
               "forgotten": 0}
    for n in range(1, rounds + 1):
        files = repository.advance(n)
        started = time.perf_counter()
        [result] = workspace.sync()
        assert result.error is None and result.version_id is not None, result.error
        version = workspace.cache.get(REPO, result.version_id)
        extraction = store.record_extraction(
            REPO, result.version_id, sorted(files.items()),
            {BROKEN: "ModuleNotFoundError: No module named 'missing_module_of_this_repository'"},
            file_count=len(files) + 1,
            file_hashes={f.path: f.sha256 for f in version.files})
        assert extraction.recorded
        if n % GC_EVERY == 0:
            _, gc = pipeline.gc(keep_graphs=KEEP_GRAPHS, keep_sources=KEEP_SOURCES)
            removed["graph_versions"] += len(gc.removed)
            removed["source_versions"] += len(gc.source_versions)
            removed["import_errors"] += gc.import_errors
            removed["links"] += gc.links
            removed["forgotten"] += len(gc.forgotten)
            history.append({"round": n, **row_counts(store)})
        samples.append(time.perf_counter() - started)
    store.close()
    bound = kept_bound()
    peak = {table: max(h[table] for h in history) for table in bound}
    totals = [sum(v for k, v in h.items() if k != "round") for h in history]
    step = max(1, len(history) // 10)
    extra = {
        "rounds": rounds,
        "rows_at_end": totals[-1],
        "peak_rows": sum(peak.values()),
        "bound": sum(bound.values()),
        "without_gc_at_least": totals[-1] + sum(removed.values()) - removed["forgotten"],
        "removed_by_gc": removed,
        "peak_per_table": peak,
        "bound_per_table": bound,
        "total_rows_over_time": [(h["round"], t) for h, t in zip(history, totals, strict=True)
                                 ][::step],
    }
    rows = [Row(scenario, f"{rounds} syncs + extractions, gc every {GC_EVERY}", samples,
                extra=extra)]

    def bounded(by_name: dict[str, Row]) -> tuple[bool, str]:
        info = by_name[rows[0].name].extra
        over = {t: (info["peak_per_table"][t], b) for t, b in info["bound_per_table"].items()
                if info["peak_per_table"][t] > b}
        return (not over,
                f"peak {info['peak_rows']} rows after any gc, bound {info['bound']} "
                f"(tables over it: {over or 'none'}); "
                f"{info['without_gc_at_least']}+ rows without gc")

    return rows, [Target(scenario, "graph store rows stay within what gc keeps", bounded)]


SCENARIOS = {"lifecycle": lifecycle}
