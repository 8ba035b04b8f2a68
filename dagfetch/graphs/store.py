"""The graph store: versioned DAG graphs in SQL, linked to the code that produced them and to
the runs that used them.

    store = GraphStore("postgresql+psycopg://airflow@db/airflow", prefix="dagfetch_")
    store.record(graph)                       # version 1; again: nothing written, version 1
    store.latest_all()                        # every DAG's latest version, one query
    store.pin_run("manual__1", "etl")         # the run keeps this graph, whatever comes next
    store.run_graph("manual__1", "etl")

Rules:

- A graph version is (dag_id, content hash); versions are numbered 1, 2, 3... per DAG and a
  number is never reused. A graph equal to *any* earlier version of its DAG becomes latest
  again under that version's number, so A -> B -> A is two versions, not three.
- Recording an unchanged graph reads and writes nothing but a couple of SELECTs.
- Every write is one transaction, retried as a whole when another writer got a unique key
  first (or a deadlock): two processes recording the same new graph end with one version,
  and a failure half-way leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from dagfetch.graphs import database as db
from dagfetch.graphs.errors import GraphNotFoundError, InvalidGraphError, RunAlreadyPinnedError
from dagfetch.graphs.model import (
    Edge,
    Extraction,
    GcResult,
    Graph,
    GraphDiff,
    GraphVersion,
    ImportErrorRecord,
    RecordResult,
    RunPin,
    SourceRef,
    Task,
    diff,
)
from dagfetch.graphs.schema import DEFAULT_PREFIX, GraphTables, tables
from dagfetch.redact import get_logger

__all__ = [  # the value types live in model.py; importing them from here keeps working
    "Extraction",
    "GcResult",
    "GraphStore",
    "GraphVersion",
    "ImportErrorRecord",
    "RecordResult",
    "RunPin",
    "SourceRef",
]

log = get_logger(__name__)

CHUNK = 500  # ids per IN (...) list: far below every backend's limit on bound parameters


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class GraphStore:
    """DAG graphs in a SQL database. ``url`` is any SQLAlchemy URL; the driver comes from it."""

    def __init__(
        self,
        url: str | URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        upgrade: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.url = db.parse_url(url)
        self.t: GraphTables = tables(prefix)
        self.engine = engine if engine is not None else db.make_engine(self.url)
        try:
            if upgrade:
                self.upgrade()
            else:
                db.check_schema(self.engine, self.t, self.url)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise db.database_error(self.url, exc) from None

    @classmethod
    def for_cache(cls, cache_root: str | Path, url: str | None = None, **kwargs: Any) -> GraphStore:
        """``url``, else the SQLite file under the cache root."""
        return cls(url or db.default_url(cache_root), **kwargs)

    def __repr__(self) -> str:
        return f"GraphStore({db.describe(self.url)!r}, prefix={self.t.prefix!r})"

    def upgrade(self, revision: str = "head") -> None:
        """Bring the database to the newest schema (creating the tables). Safe to repeat."""
        db.upgrade(self.engine, self.t, revision)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop(self) -> None:
        """Remove every table of this store and its migration history (tests, uninstall)."""
        with self.engine.begin() as conn:
            self.t.metadata.drop_all(conn)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.t.version_table}"))

    # -- recording --------------------------------------------------------------------------

    def record(self, graph: Graph, source: SourceRef | None = None) -> RecordResult:
        """Store ``graph`` unless an identical version exists; return its version."""
        return self.record_many([(graph, source)])[0]

    def record_many(
        self, items: Iterable[Graph | tuple[Graph, SourceRef | None]]
    ) -> list[RecordResult]:
        """Record many DAGs in one transaction and a handful of statements."""
        pairs = [(i, None) if isinstance(i, Graph) else i for i in items]
        return db.in_transaction(self.engine, lambda conn: self._record(conn, pairs))

    def is_extracted(self, repo_id: str, version_id: str) -> bool:
        """Whether this source version's extraction was recorded (here or on another node)."""
        sv = self.t.source_version
        with db.reading(self.engine) as conn:
            found = conn.execute(
                sa.select(sv.c.id).where(sv.c.repo_id == repo_id, sv.c.version_id == version_id,
                                         sv.c.extracted_at.is_not(None))
            ).first()
        return found is not None

    def record_extraction(
        self,
        repo_id: str,
        version_id: str,
        graphs: Sequence[tuple[str, Graph]],
        errors: Mapping[str, str],
        *,
        file_count: int,
    ) -> Extraction:
        """Record everything one source version's DAG files gave (``(path, graph)`` pairs and
        ``path -> traceback`` import errors) in one transaction. A version recorded before
        is left alone: the second of two nodes extracting the same version writes nothing."""
        source = SourceRef(repo_id, version_id)

        def work(conn: Connection) -> Extraction:
            sv = self.t.source_version
            row = conn.execute(
                sa.select(sv.c.id, sv.c.extracted_at)
                .where(sv.c.repo_id == repo_id, sv.c.version_id == version_id)
            ).first()
            values = {"extracted_at": _now(), "file_count": file_count,
                      "dag_count": len(graphs), "error_count": len(errors)}
            if row is not None and row.extracted_at is not None:
                return Extraction(source, recorded=False)
            if row is None:
                conn.execute(sa.insert(sv).values(repo_id=repo_id, version_id=version_id,
                                                  **values))
            else:
                # claim it: of two nodes updating the same row, the second sees 0 rows
                claimed = conn.execute(
                    sa.update(sv).where(sv.c.id == row.id, sv.c.extracted_at.is_(None))
                    .values(**values)
                ).rowcount
                if claimed != 1:
                    return Extraction(source, recorded=False)
            results = self._record(
                conn, [(g, SourceRef(repo_id, version_id, path)) for path, g in graphs]
            )
            sv_pk = self._source_pks(conn, [source])[(repo_id, version_id)]
            if errors:
                conn.execute(sa.insert(self.t.import_error), [
                    {"source_version_pk": sv_pk, "file_path": path, "message": message}
                    for path, message in sorted(errors.items())
                ])
            return Extraction(
                source, recorded=True, results=tuple(results),
                errors=tuple(ImportErrorRecord(repo_id, version_id, p, m)
                             for p, m in sorted(errors.items())),
            )

        return db.in_transaction(self.engine, work)

    def _record(
        self, conn: Connection, pairs: Sequence[tuple[Graph, SourceRef | None]]
    ) -> list[RecordResult]:
        t = self.t
        seen: dict[str, int] = {}
        for i, (graph, _) in enumerate(pairs):
            if graph.dag_id in seen:
                raise InvalidGraphError(f"DAG {graph.dag_id!r} given twice in one batch")
            seen[graph.dag_id] = i
        if not pairs:
            return []
        dag_ids = [g.dag_id for g, _ in pairs]
        hashes = {g.dag_id: g.content_hash for g, _ in pairs}
        now = _now()

        # 1. each DAG's row and its latest version, in one query per chunk
        state = self._dag_state(conn, dag_ids)
        missing = [d for d in dag_ids if d not in state]
        if missing:
            conn.execute(sa.insert(t.dag), [
                {"dag_id": d, "latest_number": None, "last_number": 0, "created_at": now,
                 "updated_at": now} for d in missing
            ])
            state.update(self._dag_state(conn, missing))

        # 2. graphs that differ from their latest: is it any earlier version (A -> B -> A)?
        changed = [d for d in dag_ids if state[d]["latest_hash"] != hashes[d]]
        earlier = self._versions_by_hash(conn, [(state[d]["pk"], hashes[d]) for d in changed])

        results: dict[str, RecordResult] = {}
        gv_ids: dict[str, int] = {}
        moves: list[dict[str, Any]] = []  # dag rows with a new version
        back: list[dict[str, Any]] = []  # dag rows going back to an earlier version
        created: list[Graph] = []
        for graph, _ in pairs:
            d = graph.dag_id
            st = state[d]
            if d not in changed:
                gv_ids[d] = st["latest_id"]
                results[d] = RecordResult(self._gv_from_state(d, st), False, False)
                continue
            found = earlier.get((st["pk"], hashes[d]))
            if found is not None:
                gv_ids[d] = found.id
                back.append({"b_pk": st["pk"], "b_latest": found.number})
                results[d] = RecordResult(self._gv(d, found, latest=True), False, True)
                continue
            number = st["last_number"] + 1
            moves.append({"b_pk": st["pk"], "b_latest": number, "b_last": number})
            created.append(graph)
            results[d] = RecordResult(
                GraphVersion(d, number, hashes[d], len(graph.tasks), len(graph.edges), now, True),
                True, True)
        if created:
            gv_ids.update(self._insert_versions(
                conn, [(state[g.dag_id]["pk"], results[g.dag_id].version.number, g)
                       for g in created], now))
            for g in created:
                log.info("DAG %s: recorded graph version %d", g.dag_id,
                         results[g.dag_id].version.number)
        if moves:
            # a concurrent writer that took the same number made our graph_version insert
            # fail on its unique key, and this transaction was retried from the start
            conn.execute(
                sa.update(t.dag).where(t.dag.c.id == sa.bindparam("b_pk"))
                .values(latest_number=sa.bindparam("b_latest"),
                        last_number=sa.bindparam("b_last"), updated_at=now),
                moves,
            )
        if back:  # last_number stays: numbers are never reused
            conn.execute(
                sa.update(t.dag).where(t.dag.c.id == sa.bindparam("b_pk"))
                .values(latest_number=sa.bindparam("b_latest"), updated_at=now),
                back,
            )

        # 3. which source version produced which graph version
        linked = [(g, s) for g, s in pairs if s is not None]
        if linked:
            self._link_sources(conn, linked, state, gv_ids)
        return [results[g.dag_id] for g, _ in pairs]

    def _dag_state(self, conn: Connection, dag_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        t = self.t
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(dag_ids):
            rows = conn.execute(
                sa.select(t.dag.c.id, t.dag.c.dag_id, t.dag.c.last_number, t.graph_version)
                .select_from(t.dag.outerjoin(
                    t.graph_version,
                    (t.graph_version.c.dag_pk == t.dag.c.id)
                    & (t.graph_version.c.number == t.dag.c.latest_number),
                ))
                .where(t.dag.c.dag_id.in_(chunk))
            ).all()
            for r in rows:
                m = r._mapping
                out[r[1]] = {
                    "pk": r[0], "last_number": r[2], "latest_id": m[t.graph_version.c.id],
                    "latest_hash": m[t.graph_version.c.graph_hash],
                    "latest_number": m[t.graph_version.c.number],
                    "task_count": m[t.graph_version.c.task_count],
                    "edge_count": m[t.graph_version.c.edge_count],
                    "created_at": m[t.graph_version.c.created_at],
                }
        return out

    @staticmethod
    def _gv_from_state(dag_id: str, st: Mapping[str, Any]) -> GraphVersion:
        return GraphVersion(dag_id, st["latest_number"], st["latest_hash"], st["task_count"],
                            st["edge_count"], st["created_at"], True)

    @staticmethod
    def _gv(dag_id: str, row: Any, *, latest: bool) -> GraphVersion:
        return GraphVersion(dag_id, row.number, row.graph_hash, row.task_count, row.edge_count,
                            row.created_at, latest)

    def _versions_by_hash(
        self, conn: Connection, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Any]:
        gv = self.t.graph_version
        out: dict[tuple[int, str], Any] = {}
        for chunk in _chunks(keys):
            rows = conn.execute(
                sa.select(gv).where(gv.c.dag_pk.in_(sorted({k[0] for k in chunk})),
                                    gv.c.graph_hash.in_(sorted({k[1] for k in chunk})))
            ).all()
            for r in rows:
                out[(r.dag_pk, r.graph_hash)] = r
        return out

    def _insert_versions(
        self, conn: Connection, items: Sequence[tuple[int, int, Graph]], now: datetime
    ) -> dict[str, int]:
        """Insert new versions with their task and edge rows, a few statements in all."""
        t = self.t
        conn.execute(sa.insert(t.graph_version), [
            {"dag_pk": dag_pk, "number": number, "graph_hash": g.content_hash,
             "task_count": len(g.tasks), "edge_count": len(g.edges), "created_at": now}
            for dag_pk, number, g in items
        ])
        rows = self._versions_by_hash(conn, [(dag_pk, g.content_hash) for dag_pk, _, g in items])
        ids = {g.dag_id: rows[(dag_pk, g.content_hash)].id for dag_pk, _, g in items}
        tasks = [
            {"graph_version_id": ids[g.dag_id], "task_id": task.task_id, "kind": task.kind,
             "attributes": json.dumps(dict(task.attributes), sort_keys=True)
             if task.attributes else None}
            for _, _, g in items for task in g.tasks
        ]
        edges = [
            {"graph_version_id": ids[g.dag_id], "upstream": e.upstream,
             "downstream": e.downstream}
            for _, _, g in items for e in g.edges
        ]
        for table, rows_ in ((t.task, tasks), (t.edge, edges)):
            for chunk in _chunks(rows_, 5000):
                conn.execute(sa.insert(table), list(chunk))
        return ids

    def _source_pks(
        self, conn: Connection, refs: Iterable[SourceRef], *, create: bool = False
    ) -> dict[tuple[str, str], int]:
        sv = self.t.source_version
        wanted = sorted({(r.repo_id, r.version_id) for r in refs})
        found: dict[tuple[str, str], int] = {}
        for repo_id in sorted({w[0] for w in wanted}):
            versions = [w[1] for w in wanted if w[0] == repo_id]
            for chunk in _chunks(versions):
                for r in conn.execute(sa.select(sv.c.id, sv.c.version_id).where(
                        sv.c.repo_id == repo_id, sv.c.version_id.in_(chunk))):
                    found[(repo_id, r.version_id)] = r.id
        missing = [w for w in wanted if w not in found]
        if missing and create:
            conn.execute(sa.insert(sv), [
                {"repo_id": r, "version_id": v, "extracted_at": None, "file_count": 0,
                 "dag_count": 0, "error_count": 0} for r, v in missing
            ])
            found.update(self._source_pks(conn, [SourceRef(r, v) for r, v in missing]))
        return found

    def _link_sources(
        self,
        conn: Connection,
        linked: Sequence[tuple[Graph, SourceRef]],
        state: Mapping[str, Mapping[str, Any]],
        gv_ids: Mapping[str, int],
    ) -> None:
        ds = self.t.dag_source
        sv_pks = self._source_pks(conn, [s for _, s in linked], create=True)
        existing: dict[tuple[int, int], tuple[int, str]] = {}
        for chunk in _chunks(sorted(set(sv_pks.values()))):
            for r in conn.execute(sa.select(ds).where(ds.c.source_version_pk.in_(chunk))):
                existing[(r.source_version_pk, r.dag_pk)] = (r.graph_version_id, r.file_path)
        new_rows = []
        for graph, src in linked:
            key = (sv_pks[(src.repo_id, src.version_id)], state[graph.dag_id]["pk"])
            want = (gv_ids[graph.dag_id], src.path)
            if key not in existing:
                new_rows.append({"source_version_pk": key[0], "dag_pk": key[1],
                                 "graph_version_id": want[0], "file_path": want[1]})
            elif existing[key] != want:
                # the same code gave another graph (a DAG file that reads the clock...): last wins
                conn.execute(sa.update(ds).where(ds.c.source_version_pk == key[0],
                                                 ds.c.dag_pk == key[1])
                             .values(graph_version_id=want[0], file_path=want[1]))
        if new_rows:
            conn.execute(sa.insert(ds), new_rows)

    # -- reading ------------------------------------------------------------------------------

    def dag_ids(self) -> list[str]:
        with db.reading(self.engine) as conn:
            return list(conn.execute(sa.select(self.t.dag.c.dag_id)
                                     .order_by(self.t.dag.c.dag_id)).scalars())

    def latest_all(self) -> list[GraphVersion]:
        """Every DAG's latest graph version, in one query."""
        t = self.t
        query = (
            sa.select(t.dag.c.dag_id, t.graph_version)
            .join(t.graph_version, (t.graph_version.c.dag_pk == t.dag.c.id)
                  & (t.graph_version.c.number == t.dag.c.latest_number))
            .order_by(t.dag.c.dag_id)
        )
        with db.reading(self.engine) as conn:
            return [self._gv(r.dag_id, r, latest=True) for r in conn.execute(query)]

    def latest_graphs(self) -> dict[str, Graph]:
        """Every DAG's latest graph, tasks and edges included, in three queries whatever the
        number of DAGs: what a web server reads to show them all."""
        t = self.t
        latest = (t.graph_version.c.dag_pk == t.dag.c.id) & (
            t.graph_version.c.number == t.dag.c.latest_number
        )
        tasks: dict[str, list[Task]] = {}
        edges: dict[str, list[Edge]] = {}
        with db.reading(self.engine) as conn:
            for (dag_id,) in conn.execute(
                sa.select(t.dag.c.dag_id).join(t.graph_version, latest)
            ):
                tasks[dag_id] = []
                edges[dag_id] = []
            for r in conn.execute(
                sa.select(t.dag.c.dag_id, t.task.c.task_id, t.task.c.kind, t.task.c.attributes)
                .join(t.graph_version, latest)
                .join(t.task, t.task.c.graph_version_id == t.graph_version.c.id)
            ):
                attributes = json.loads(r.attributes) if r.attributes else {}
                tasks[r.dag_id].append(Task(r.task_id, r.kind, attributes))
            for e in conn.execute(
                sa.select(t.dag.c.dag_id, t.edge.c.upstream, t.edge.c.downstream)
                .join(t.graph_version, latest)
                .join(t.edge, t.edge.c.graph_version_id == t.graph_version.c.id)
            ):
                edges[e.dag_id].append(Edge(e.upstream, e.downstream))
        return {d: Graph.of(d, tasks[d], edges[d]) for d in sorted(tasks)}

    def latest(self, dag_id: str) -> GraphVersion:
        return self.version(dag_id)

    def version(self, dag_id: str, number: int | None = None) -> GraphVersion:
        """A version of a DAG (default: its latest)."""
        with db.reading(self.engine) as conn:
            return self._version(conn, dag_id, number)[1]

    def _version(
        self, conn: Connection, dag_id: str, number: int | None
    ) -> tuple[int, GraphVersion]:
        t = self.t
        dag = conn.execute(sa.select(t.dag).where(t.dag.c.dag_id == dag_id)).first()
        if dag is None or dag.latest_number is None:
            raise GraphNotFoundError(f"no DAG {dag_id!r} in the graph store")
        wanted = dag.latest_number if number is None else number
        row = conn.execute(sa.select(t.graph_version).where(
            t.graph_version.c.dag_pk == dag.id, t.graph_version.c.number == wanted)).first()
        if row is None:
            raise GraphNotFoundError(
                f"DAG {dag_id!r} has no version {wanted} (it never existed, or gc removed it: "
                "gc keeps versions that runs are pinned to)"
            )
        return row.id, self._gv(dag_id, row, latest=wanted == dag.latest_number)

    def history(self, dag_id: str) -> list[GraphVersion]:
        """Every stored version of a DAG, oldest first."""
        t = self.t
        with db.reading(self.engine) as conn:
            dag = conn.execute(sa.select(t.dag).where(t.dag.c.dag_id == dag_id)).first()
            if dag is None:
                raise GraphNotFoundError(f"no DAG {dag_id!r} in the graph store")
            rows = conn.execute(sa.select(t.graph_version)
                                .where(t.graph_version.c.dag_pk == dag.id)
                                .order_by(t.graph_version.c.number)).all()
        return [self._gv(dag_id, r, latest=r.number == dag.latest_number) for r in rows]

    def graph(self, dag_id: str, number: int | None = None) -> Graph:
        """The graph of a version (default: latest), rebuilt from its task and edge rows."""
        with db.reading(self.engine) as conn:
            gv_id, _ = self._version(conn, dag_id, number)
            return self._load_graph(conn, dag_id, gv_id)

    def _load_graph(self, conn: Connection, dag_id: str, gv_id: int) -> Graph:
        t = self.t
        tasks = [
            Task(r.task_id, r.kind, json.loads(r.attributes) if r.attributes else {})
            for r in conn.execute(sa.select(t.task).where(t.task.c.graph_version_id == gv_id))
        ]
        edges = [
            Edge(r.upstream, r.downstream)
            for r in conn.execute(sa.select(t.edge).where(t.edge.c.graph_version_id == gv_id))
        ]
        return Graph.of(dag_id, tasks, edges)

    def diff(self, dag_id: str, old: int, new: int) -> GraphDiff:
        return diff(self.graph(dag_id, old), self.graph(dag_id, new))

    def sources(self, dag_id: str, number: int | None = None) -> list[SourceRef]:
        """The source versions (and files) that produced a graph version, oldest first."""
        t = self.t
        with db.reading(self.engine) as conn:
            gv_id, _ = self._version(conn, dag_id, number)
            rows = conn.execute(
                sa.select(t.source_version.c.repo_id, t.source_version.c.version_id,
                          t.dag_source.c.file_path)
                .join(t.source_version, t.source_version.c.id == t.dag_source.c.source_version_pk)
                .where(t.dag_source.c.graph_version_id == gv_id)
                .order_by(t.source_version.c.id)
            ).all()
        return [SourceRef(r.repo_id, r.version_id, r.file_path) for r in rows]

    def import_errors(
        self, repo_id: str | None = None, version_id: str | None = None
    ) -> list[ImportErrorRecord]:
        """Import errors of one source version, or of each repository's newest extraction."""
        t = self.t
        sv, ie = t.source_version, t.import_error
        query = sa.select(sv.c.repo_id, sv.c.version_id, ie.c.file_path, ie.c.message).join(
            sv, sv.c.id == ie.c.source_version_pk)
        if version_id is not None:
            query = query.where(sv.c.version_id == version_id)
        else:
            newest = (sa.select(sa.func.max(sv.c.id)).where(sv.c.extracted_at.is_not(None))
                      .group_by(sv.c.repo_id))
            query = query.where(sv.c.id.in_(newest))
        if repo_id is not None:
            query = query.where(sv.c.repo_id == repo_id)
        with db.reading(self.engine) as conn:
            rows = conn.execute(query.order_by(sv.c.repo_id, ie.c.file_path)).all()
        return [ImportErrorRecord(r.repo_id, r.version_id, r.file_path, r.message) for r in rows]

    # -- runs -----------------------------------------------------------------------------------

    def pin_run(
        self, run_id: str, dag_id: str, *, number: int | None = None,
        source: SourceRef | None = None,
    ) -> RunPin:
        """Pin a run to a graph version (default: the DAG's latest) and the source version
        that produced it (default: the newest one linked to that graph version). Pinning a
        pinned run again returns its pin; asking for another version is an error, because a
        run's graph never changes once it started."""
        t = self.t

        def work(conn: Connection) -> RunPin:
            gv_id, version = self._version(conn, dag_id, number)
            existing = self._run_row(conn, run_id, dag_id)
            if existing is not None:
                pin = self._run_pin(conn, existing)
                if number is not None and pin.version.number != number:
                    raise RunAlreadyPinnedError(
                        f"run {run_id!r} of DAG {dag_id!r} is pinned to version "
                        f"{pin.version.number}; a run's graph does not change once pinned"
                    )
                return pin
            src = source or self._newest_source(conn, gv_id)
            sv_pk = None
            if src is not None:
                sv_pk = self._source_pks(conn, [src], create=True)[(src.repo_id, src.version_id)]
            dag_pk = conn.execute(sa.select(t.dag.c.id).where(t.dag.c.dag_id == dag_id)).scalar()
            now = _now()
            conn.execute(sa.insert(t.run).values(dag_pk=dag_pk, run_id=run_id,
                                                 graph_version_id=gv_id,
                                                 source_version_pk=sv_pk, pinned_at=now))
            return RunPin(run_id, dag_id, version, src, now)

        return db.in_transaction(self.engine, work)

    def _newest_source(self, conn: Connection, gv_id: int) -> SourceRef | None:
        t = self.t
        row = conn.execute(
            sa.select(t.source_version.c.repo_id, t.source_version.c.version_id,
                      t.dag_source.c.file_path)
            .join(t.source_version, t.source_version.c.id == t.dag_source.c.source_version_pk)
            .where(t.dag_source.c.graph_version_id == gv_id)
            .order_by(t.source_version.c.id.desc()).limit(1)
        ).first()
        return SourceRef(row.repo_id, row.version_id, row.file_path) if row else None

    def _run_row(self, conn: Connection, run_id: str, dag_id: str | None) -> Any:
        t = self.t
        query = (sa.select(t.run, t.dag.c.dag_id).join(t.dag, t.dag.c.id == t.run.c.dag_pk)
                 .where(t.run.c.run_id == run_id))
        if dag_id is not None:
            query = query.where(t.dag.c.dag_id == dag_id)
        rows = conn.execute(query).all()
        if len(rows) > 1:
            dags = ", ".join(sorted(r.dag_id for r in rows))
            raise GraphNotFoundError(f"run {run_id!r} exists for several DAGs ({dags}); "
                                     "name the DAG")
        return rows[0] if rows else None

    def _run_pin(self, conn: Connection, row: Any) -> RunPin:
        t = self.t
        gv = conn.execute(sa.select(t.graph_version, t.dag.c.latest_number)
                          .join(t.dag, t.dag.c.id == t.graph_version.c.dag_pk)
                          .where(t.graph_version.c.id == row.graph_version_id)).one()
        src = None
        if row.source_version_pk is not None:
            sv = conn.execute(sa.select(t.source_version)
                              .where(t.source_version.c.id == row.source_version_pk)).one()
            path = conn.execute(sa.select(t.dag_source.c.file_path).where(
                t.dag_source.c.source_version_pk == row.source_version_pk,
                t.dag_source.c.dag_pk == row.dag_pk)).scalar()
            src = SourceRef(sv.repo_id, sv.version_id, path or "")
        version = self._gv(row.dag_id, gv, latest=gv.number == gv.latest_number)
        return RunPin(row.run_id, row.dag_id, version, src, row.pinned_at)

    def run(self, run_id: str, dag_id: str | None = None) -> RunPin:
        """A run's pin; ``dag_id`` may be left out when the run id is unique."""
        with db.reading(self.engine) as conn:
            row = self._run_row(conn, run_id, dag_id)
            if row is None:
                where = f" of DAG {dag_id!r}" if dag_id else ""
                raise GraphNotFoundError(f"no run {run_id!r}{where} is pinned")
            return self._run_pin(conn, row)

    def run_graph(self, run_id: str, dag_id: str | None = None) -> Graph:
        """The graph a run is pinned to, however the DAG changed since."""
        with db.reading(self.engine) as conn:
            row = self._run_row(conn, run_id, dag_id)
            if row is None:
                raise GraphNotFoundError(f"no run {run_id!r} is pinned")
            return self._load_graph(conn, row.dag_id, row.graph_version_id)

    # -- publishing (follow mode) --------------------------------------------------------------

    def publish(self, repo_id: str, version_id: str) -> None:
        """Tell every node following this database to serve ``version_id`` of ``repo_id``."""
        pub = self.t.published

        def work(conn: Connection) -> None:
            now = _now()
            updated = conn.execute(sa.update(pub).where(pub.c.repo_id == repo_id)
                                   .values(version_id=version_id, published_at=now)).rowcount
            if updated == 0:
                conn.execute(sa.insert(pub).values(repo_id=repo_id, version_id=version_id,
                                                   published_at=now))

        db.in_transaction(self.engine, work)

    def published(self, repo_id: str) -> str | None:
        pub = self.t.published
        with db.reading(self.engine) as conn:
            return conn.execute(sa.select(pub.c.version_id)
                                .where(pub.c.repo_id == repo_id)).scalar()

    # -- garbage collection ---------------------------------------------------------------------

    def gc(self, keep: int = 5, *, dry_run: bool = False) -> GcResult:
        """Remove graph versions that are not their DAG's latest, not among its newest ``keep``
        numbers, and not pinned by any run; with their tasks, edges and source links."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        t = self.t

        def work(conn: Connection) -> GcResult:
            pinned = sa.exists().where(t.run.c.graph_version_id == t.graph_version.c.id)
            rows = conn.execute(
                sa.select(t.graph_version.c.id, t.graph_version.c.number, t.dag.c.dag_id,
                          t.dag.c.latest_number, pinned.label("pinned"))
                .join(t.dag, t.dag.c.id == t.graph_version.c.dag_pk)
                .order_by(t.dag.c.dag_id, t.graph_version.c.number.desc())
            ).all()
            doomed: list[tuple[int, str, int]] = []
            rank: dict[str, int] = {}
            for r in rows:
                rank[r.dag_id] = rank.get(r.dag_id, 0) + 1
                if rank[r.dag_id] > keep and r.number != r.latest_number and not r.pinned:
                    doomed.append((r.id, r.dag_id, r.number))
            if not dry_run:
                ids = [d[0] for d in doomed]
                for chunk in _chunks(ids):
                    for table in (t.edge, t.task, t.dag_source):
                        conn.execute(sa.delete(table).where(table.c.graph_version_id.in_(chunk)))
                    conn.execute(sa.delete(t.graph_version).where(t.graph_version.c.id.in_(chunk)))
            return GcResult(tuple((d, n) for _, d, n in doomed), dry_run)

        return db.in_transaction(self.engine, work)
