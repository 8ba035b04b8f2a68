"""Graph store scenarios on SQLite and PostgreSQL: record 1,000 DAGs of 50 tasks cold, record
them again unchanged, read every latest graph. The baseline is what schedulers commonly do
instead: one serialized JSON blob per DAG in one table."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from benchmarks.harness import Config, Row, Target, row
from dagfetch.graphs.model import Graph
from dagfetch.graphs.store import GraphStore

POSTGRES = os.environ.get(
    "DAGFETCH_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WRITES = ("INSERT", "UPDATE", "DELETE")


def make_graphs(dags: int, tasks: int, generation: int = 0) -> list[Graph]:
    out = []
    for d in range(dags):
        names = [f"task_{t:03}" for t in range(tasks)]
        # a chain with a few fan-outs, like a typical ETL DAG
        edges = [(names[t], names[t + 1]) for t in range(tasks - 1)]
        edges += [(names[t], names[t + 5]) for t in range(0, tasks - 5, 7)]
        out.append(Graph.of(f"dag_{d:04}_g{generation}", names, edges))
    return out


@contextmanager
def counting(engine: sa.Engine) -> Iterator[dict[str, int]]:
    counts = {"statements": 0, "writes": 0}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counts["statements"] += 1
        if statement.lstrip().upper().startswith(WRITES):
            counts["writes"] += 1

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield counts
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def _database(name: str, url: str, config: Config) -> tuple[list[Row], list[Target]]:
    dags, tasks = (100, 50) if config.quick else (1_000, 50)
    scenario = f"graphs {name}"
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    store = GraphStore(url, prefix=prefix)
    blobs = sa.Table(
        f"{prefix}serialized",
        sa.MetaData(),
        sa.Column("dag_id", sa.String(250), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    blobs.create(store.engine)
    generation = iter(range(1, 1_000_000))
    batch: dict[str, list[Graph]] = {}

    def fresh() -> None:
        batch["graphs"] = make_graphs(dags, tasks, next(generation))

    def record_cold() -> None:
        store.record_many(batch["graphs"])

    def blob_cold() -> None:
        with store.engine.begin() as conn:
            conn.execute(
                blobs.insert(),
                [
                    {"dag_id": g.dag_id, "hash": g.content_hash, "data": json.dumps(g.to_json())}
                    for g in batch["graphs"]
                ],
            )

    def record_again() -> None:
        store.record_many(batch["graphs"])

    def blob_again() -> None:
        with store.engine.begin() as conn:
            known = dict(conn.execute(sa.select(blobs.c.dag_id, blobs.c.hash)).all())
            changed = [g for g in batch["graphs"] if known.get(g.dag_id) != g.content_hash]
            if changed:
                conn.execute(
                    blobs.insert(),
                    [
                        {
                            "dag_id": g.dag_id,
                            "hash": g.content_hash,
                            "data": json.dumps(g.to_json()),
                        }
                        for g in changed
                    ],
                )

    def read_latest() -> None:
        store.latest_graphs()

    def blob_read() -> None:
        with store.engine.connect() as conn:
            # the same objects a reader gets from the store, so the two compare storage only
            {
                d: Graph.from_json(json.loads(data))
                for d, data in conn.execute(sa.select(blobs.c.dag_id, blobs.c.data))
            }

    try:
        rows = [
            _row(
                scenario,
                "record cold (dagfetch)",
                record_cold,
                config,
                store,
                fresh,
                extra={"dags": dags, "tasks": tasks},
            ),
            _row(
                scenario,
                "record cold (JSON blobs)",
                blob_cold,
                config,
                store,
                fresh,
                baseline_for="record cold (dagfetch)",
            ),
        ]
        # the last batch is in both stores: record it again, unchanged
        rows += [
            _row(scenario, "re-record unchanged (dagfetch)", record_again, config, store),
            _row(
                scenario,
                "re-record unchanged (JSON blobs)",
                blob_again,
                config,
                store,
                baseline_for="re-record unchanged (dagfetch)",
            ),
            _row(
                scenario,
                "read all latest (dagfetch)",
                read_latest,
                config,
                store,
                extra={"dags in store": len(store.latest_all())},
            ),
            _row(
                scenario,
                "read all latest (JSON blobs)",
                blob_read,
                config,
                store,
                baseline_for="read all latest (dagfetch)",
            ),
        ]
    finally:
        blobs.drop(store.engine)
        store.drop()
        store.close()

    def writes_nothing(by_name: dict[str, Row]) -> tuple[bool, str]:
        writes = by_name["re-record unchanged (dagfetch)"].extra["writes"]
        return writes == 0, f"{writes} writing statements"

    return rows, [
        Target(scenario, f"re-recording {dags} unchanged DAGs writes nothing", writes_nothing)
    ]


def _row(
    scenario: str,
    name: str,
    fn: Callable[[], None],
    config: Config,
    store: GraphStore,
    setup: Callable[[], None] | None = None,
    *,
    baseline_for: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Row:
    def statements(run: Callable[[], Any]) -> dict[str, int]:
        with counting(store.engine) as counts:
            run()
        return counts

    return row(
        scenario,
        name,
        fn,
        config,
        setup=setup,
        baseline_for=baseline_for,
        extra=extra,
        count=statements,
    )


def graphs_sqlite(config: Config) -> tuple[list[Row], list[Target]]:
    return _database("sqlite", f"sqlite:///{config.workdir / 'graphs.db'}", config)


def graphs_postgres(config: Config) -> tuple[list[Row], list[Target]]:
    try:
        sa.create_engine(POSTGRES).connect().close()
    except sa.exc.OperationalError as exc:
        print(f"graphs_postgres skipped: no PostgreSQL at {POSTGRES} ({exc.orig})")
        return [], []
    return _database("postgres", POSTGRES, config)


SCENARIOS = {"graphs_sqlite": graphs_sqlite, "graphs_postgres": graphs_postgres}
