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

:class:`GraphStore` is the facade: it owns the engine and the transactions and hands an open
connection to the module that knows the job: :mod:`~dagfetch.graphs.queries` (reading),
:mod:`~dagfetch.graphs.recording` (the write path; :mod:`~dagfetch.graphs.lifecycle` for
inactive DAGs), :mod:`~dagfetch.graphs.runs` (run pins), :mod:`~dagfetch.graphs.publishing`
(follow mode), :mod:`~dagfetch.graphs.stability` (``unstable_dags``) and
:mod:`~dagfetch.graphs.gc`. The values it
returns are those of :mod:`dagfetch.graphs.model` (re-exported here for older imports).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from dagfetch.graphs import database as db
from dagfetch.graphs import (
    gc,
    lifecycle,
    publishing,
    queries,
    recording,
    runs,
    schema,
    stability,
)
from dagfetch.graphs.model import (
    Extraction,
    GcResult,
    Graph,
    GraphDiff,
    GraphVersion,
    ImportErrorRecord,
    RecordResult,
    RunPin,
    SourceRef,
    UnstableDag,
    diff,
)
from dagfetch.graphs.schema import DEFAULT_PREFIX, GraphTables

#: Extractions of each repository whose import errors and source links gc keeps.
DEFAULT_KEEP_SOURCES = 10

__all__ = [  # the value types live in model.py; importing them from here keeps working
    "Extraction",
    "GcResult",
    "GraphStore",
    "GraphVersion",
    "ImportErrorRecord",
    "RecordResult",
    "RunPin",
    "SourceRef",
    "UnstableDag",
]


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
        self.tables: GraphTables = schema.tables(prefix)
        missing = db.sqlite_file(self.url)
        if not upgrade and engine is None and missing is not None and not missing.exists():
            # connecting would create an empty file: a second database nobody asked for
            raise db.schema_behind(self.url, self.tables, None)
        self.engine = engine if engine is not None else db.make_engine(self.url)
        try:
            if upgrade:
                self.upgrade()
            else:
                db.check_schema(self.engine, self.tables, self.url)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise db.database_error(self.url, exc) from None

    @property
    def t(self) -> GraphTables:
        """The former name of :attr:`tables`, kept so code written against 0.1.0 still runs."""
        return self.tables

    @classmethod
    def for_cache(
        cls, cache_root: str | Path, url: str | None = None, *, upgrade: bool | None = None,
        **kwargs: Any,
    ) -> GraphStore:
        """``url``, else the SQLite file under the cache root. The rule of every command:
        the default file is created (and migrated) on first use; a configured database is
        only opened, and refused when its schema is behind (``upgrade`` overrides)."""
        if upgrade is None:
            upgrade = url is None
        return cls(url or db.default_url(cache_root), upgrade=upgrade, **kwargs)

    def __repr__(self) -> str:
        return f"GraphStore({db.describe(self.url)!r}, prefix={self.tables.prefix!r})"

    def upgrade(self, revision: str = "head") -> None:
        """Bring the database to the newest schema (creating the tables). Safe to repeat."""
        db.upgrade(self.engine, self.tables, revision)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop(self) -> None:
        """Remove every table of this store and its migration history (tests, uninstall)."""
        with self.engine.begin() as conn:
            self.tables.metadata.drop_all(conn)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.tables.version_table}"))

    # -- recording --------------------------------------------------------------------------

    def record(self, graph: Graph, source: SourceRef | None = None) -> RecordResult:
        """Store ``graph`` unless an identical version exists; return its version."""
        return self.record_many([(graph, source)])[0]

    def record_many(
        self, items: Iterable[Graph | tuple[Graph, SourceRef | None]]
    ) -> list[RecordResult]:
        """Record many DAGs in one transaction and a handful of statements."""
        pairs = [(item, None) if isinstance(item, Graph) else item for item in items]
        return db.in_transaction(
            self.engine, lambda conn: recording.record(conn, self.tables, pairs))

    def is_extracted(self, repo_id: str, version_id: str) -> bool:
        """Whether this source version's extraction was recorded (here or on another node)."""
        with db.reading(self.engine) as conn:
            return queries.is_extracted(conn, self.tables, repo_id, version_id)

    def record_extraction(
        self,
        repo_id: str,
        version_id: str,
        graphs: Sequence[tuple[str, Graph]],
        errors: Mapping[str, str],
        *,
        file_count: int,
        file_hashes: Mapping[str, str] | None = None,
    ) -> Extraction:
        """Record everything one source version's DAG files gave (``(path, graph)`` pairs and
        ``path -> traceback`` import errors) in one transaction. A version recorded before
        is left alone: the second of two nodes extracting the same version writes nothing.
        The repository's DAGs this version no longer defines become inactive
        (``Extraction.vanished``). ``file_hashes`` (path -> sha256 of the DAG file) let
        :meth:`unstable_dags` tell a graph that changes by itself from an edited file."""
        source = SourceRef(repo_id, version_id)
        return db.in_transaction(self.engine, lambda conn: recording.record_extraction(
            conn, self.tables, source, graphs, errors, file_count=file_count,
            file_hashes=file_hashes))

    def mark_current(self, repo_id: str, version_id: str) -> list[str] | None:
        """The repository is at ``version_id`` again, a version extracted before (a revert):
        the DAGs that version defines are active, the others the repository owned become
        inactive. Returns those, or None when the version was never extracted."""
        source = SourceRef(repo_id, version_id)
        return db.in_transaction(self.engine, lambda conn: lifecycle.mark_current(
            conn, self.tables, source, schema.utc_now()))

    # -- reading ------------------------------------------------------------------------------

    def dag_ids(self) -> list[str]:
        with db.reading(self.engine) as conn:
            return queries.dag_ids(conn, self.tables)

    def latest_all(self, *, include_inactive: bool = False) -> list[GraphVersion]:
        """Every DAG's latest graph version, in one query. Inactive DAGs (no longer defined
        by the repository that defined them last) only with ``include_inactive``; their
        versions say ``active=False`` and where they vanished (``vanished_in``)."""
        with db.reading(self.engine) as conn:
            return queries.latest_all(conn, self.tables, include_inactive=include_inactive)

    def inactive(self) -> list[GraphVersion]:
        """The latest versions of the inactive DAGs only: the DAGs that disappeared."""
        return [v for v in self.latest_all(include_inactive=True) if not v.active]

    def latest_graphs(self, *, include_inactive: bool = False) -> dict[str, Graph]:
        """Every DAG's latest graph, tasks and edges included, in three queries whatever the
        number of DAGs: what a web server reads to show them all (inactive DAGs only with
        ``include_inactive``)."""
        with db.reading(self.engine) as conn:
            return queries.latest_graphs(conn, self.tables, include_inactive=include_inactive)

    def latest(self, dag_id: str) -> GraphVersion:
        return self.version(dag_id)

    def version(self, dag_id: str, number: int | None = None) -> GraphVersion:
        """A version of a DAG (default: its latest)."""
        with db.reading(self.engine) as conn:
            return queries.find_version(conn, self.tables, dag_id, number).version

    def history(self, dag_id: str) -> list[GraphVersion]:
        """Every stored version of a DAG, oldest first."""
        with db.reading(self.engine) as conn:
            return queries.history(conn, self.tables, dag_id)

    def graph(self, dag_id: str, number: int | None = None) -> Graph:
        """The graph of a version (default: latest), rebuilt from its task and edge rows."""
        with db.reading(self.engine) as conn:
            stored = queries.find_version(conn, self.tables, dag_id, number)
            return queries.load_graph(conn, self.tables, dag_id, stored.row_id)

    def diff(self, dag_id: str, old: int, new: int) -> GraphDiff:
        return diff(self.graph(dag_id, old), self.graph(dag_id, new))

    def sources(self, dag_id: str, number: int | None = None) -> list[SourceRef]:
        """The source versions (and files) that produced a graph version, oldest first."""
        with db.reading(self.engine) as conn:
            stored = queries.find_version(conn, self.tables, dag_id, number)
            return queries.sources(conn, self.tables, stored.row_id)

    def import_errors(
        self, repo_id: str | None = None, version_id: str | None = None
    ) -> list[ImportErrorRecord]:
        """Import errors of one source version, or of each repository's newest extraction."""
        with db.reading(self.engine) as conn:
            return queries.import_errors(conn, self.tables, repo_id, version_id)

    # -- runs -----------------------------------------------------------------------------------

    def pin_run(
        self, run_id: str, dag_id: str, *, number: int | None = None,
        source: SourceRef | None = None,
    ) -> RunPin:
        """Pin a run to a graph version (default: the DAG's latest) and the source version
        that produced it (default: the newest one linked to that graph version). Pinning a
        pinned run again returns its pin; asking for another version is an error, because a
        run's graph never changes once it started."""
        return db.in_transaction(self.engine, lambda conn: runs.pin_run(
            conn, self.tables, run_id, dag_id, number=number, source=source))

    def run(self, run_id: str, dag_id: str | None = None) -> RunPin:
        """A run's pin; ``dag_id`` may be left out when the run id is unique."""
        with db.reading(self.engine) as conn:
            return runs.find_pin(conn, self.tables, run_id, dag_id)

    def run_graph(self, run_id: str, dag_id: str | None = None) -> Graph:
        """The graph a run is pinned to, however the DAG changed since."""
        with db.reading(self.engine) as conn:
            return runs.pinned_graph(conn, self.tables, run_id, dag_id)

    def runs(self, dag_id: str | None = None) -> list[RunPin]:
        """Every pinned run (of one DAG), newest pin first, released ones included."""
        with db.reading(self.engine) as conn:
            return runs.list_runs(conn, self.tables, dag_id)

    def release_run(self, run_id: str, dag_id: str | None = None) -> RunPin:
        """Mark a run released: its graph pin stays as history, and its code may leave the
        caches (:meth:`GraphPipeline.release_run` also unpins it from this node's cache)."""
        return db.in_transaction(self.engine, lambda conn: runs.release_run(
            conn, self.tables, run_id, dag_id))

    # -- stability --------------------------------------------------------------------------------

    def unstable_dags(
        self, repo_id: str | None = None, *, dag_ids: Iterable[str] | None = None,
        window: int = stability.DEFAULT_WINDOW, min_changes: int = stability.MIN_CHANGES,
    ) -> list[UnstableDag]:
        """DAGs whose graph changed in almost every one of the repository's last ``window``
        extractions that left their file unchanged (see :mod:`dagfetch.graphs.stability`)."""
        if window < 2 or min_changes < 1:
            raise ValueError("window must be at least 2 and min_changes at least 1")
        wanted = None if dag_ids is None else set(dag_ids)
        with db.reading(self.engine) as conn:
            return stability.unstable_dags(conn, self.tables, repo_id, dag_ids=wanted,
                                           window=window, min_changes=min_changes)

    # -- publishing (follow mode) --------------------------------------------------------------

    def publish(self, repo_id: str, version_id: str) -> None:
        """Tell every node following this database to serve ``version_id`` of ``repo_id``."""
        db.in_transaction(self.engine, lambda conn: publishing.publish(
            conn, self.tables, repo_id, version_id))

    def published(self, repo_id: str) -> str | None:
        with db.reading(self.engine) as conn:
            return publishing.published_version(conn, self.tables, repo_id)

    # -- garbage collection ---------------------------------------------------------------------

    def gc(
        self, keep: int = 5, *, keep_sources: int = DEFAULT_KEEP_SOURCES,
        kept_sources: Mapping[str, Collection[str]] | None = None, dry_run: bool = False,
    ) -> GcResult:
        """Remove graph versions that are not their DAG's latest, not among its newest
        ``keep`` numbers and not pinned by any run; the import errors and source links of
        source versions beyond each repository's newest ``keep_sources`` extractions (unless
        a run pins them, they are published, or ``kept_sources`` says the cache still keeps
        them: ``{repo_id: version ids}``); and the unpinned graph versions of DAGs that became
        inactive beyond that window. See :mod:`dagfetch.graphs.gc`."""
        if keep < 1 or keep_sources < 1:
            raise ValueError("keep and keep_sources must be at least 1")
        return db.in_transaction(self.engine, lambda conn: gc.collect(
            conn, self.tables, keep=keep, keep_sources=keep_sources,
            kept_sources=kept_sources, dry_run=dry_run))
