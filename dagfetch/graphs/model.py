"""The value types of the graph store: a DAG graph with its canonical form and content hash,
and what the store answers about it (versions, runs, extractions, import errors, gc).

Two graphs are the same version exactly when their canonical forms are equal: tasks sorted by
id, edges sorted, attribute maps with sorted keys, JSON with fixed separators. The hash is the
sha256 of that text, so it does not depend on the order a DAG file declared things in, on the
file's name, or on which machine parsed it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from dagfetch.graphs.errors import InvalidGraphError

#: Bump when the canonical form changes; it is part of every hash, so old and new never mix.
CANONICAL_FORMAT = 1
#: Longest dag_id / task_id stored (Apache Airflow uses the same limit).
MAX_ID_LENGTH = 250

AttrValue = str | int | float | bool | None


def _frozen_attrs(value: Mapping[str, AttrValue] | None) -> Mapping[str, AttrValue]:
    items = dict(value or {})
    for key, item in items.items():
        if not isinstance(key, str) or not (item is None or isinstance(item, (str, int, float))):
            raise InvalidGraphError(
                f"attribute {key!r}: only strings, numbers, booleans and null can be stored, "
                f"got {type(item).__name__}"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidGraphError(f"attribute {key!r}: {item} cannot be stored")
    return dict(sorted(items.items()))


def _check_task_id(value: object) -> str:
    return _check_id("task_id", value)


def _check_id(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidGraphError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidGraphError(f"{kind} {value[:40]!r}... is longer than {MAX_ID_LENGTH} chars")
    return value


@attrs.frozen
class Task:
    """One task: its id, what kind of task it is (the operator class), simple attributes."""

    task_id: str = attrs.field(converter=_check_task_id)
    kind: str | None = None
    attributes: Mapping[str, AttrValue] = attrs.field(
        factory=dict, converter=_frozen_attrs, hash=False
    )

    def canonical(self) -> list[Any]:
        return [self.task_id, self.kind, dict(self.attributes)]


@attrs.frozen(order=True)
class Edge:
    """``upstream`` runs before ``downstream``."""

    upstream: str
    downstream: str


@attrs.frozen
class Graph:
    """A DAG's structure. Build with :meth:`of`, which sorts and validates."""

    dag_id: str
    tasks: tuple[Task, ...]
    edges: tuple[Edge, ...]
    #: the content hash once computed: a graph is immutable, and an extraction that carries
    #: 999 unchanged graphs over would otherwise hash each of them again to compare it with
    #: its DAG's latest version (a twentieth of a millisecond each)
    _hash: str | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @classmethod
    def of(
        cls,
        dag_id: str,
        tasks: Iterable[Task | str],
        edges: Iterable[Edge | tuple[str, str]] = (),
    ) -> Graph:
        """Validate and sort: task ids unique, every edge between known tasks, no self-loop."""
        _check_id("dag_id", dag_id)
        by_id: dict[str, Task] = {}
        for task in tasks:
            task = Task(task) if isinstance(task, str) else task
            if task.task_id in by_id:
                raise InvalidGraphError(f"DAG {dag_id!r}: task {task.task_id!r} appears twice")
            by_id[task.task_id] = task
        edge_set: set[Edge] = set()
        for edge in edges:
            edge = edge if isinstance(edge, Edge) else Edge(*edge)
            for end in (edge.upstream, edge.downstream):
                if end not in by_id:
                    raise InvalidGraphError(
                        f"DAG {dag_id!r}: edge {edge.upstream!r} -> {edge.downstream!r} "
                        f"names unknown task {end!r}"
                    )
            if edge.upstream == edge.downstream:
                raise InvalidGraphError(f"DAG {dag_id!r}: task {edge.upstream!r} depends on itself")
            edge_set.add(edge)
        # a plain tuple key: attrs' generated __lt__ made sorting the bulk of reading graphs
        edges_sorted = sorted(edge_set, key=lambda edge: (edge.upstream, edge.downstream))
        return cls(dag_id, tuple(by_id[task_id] for task_id in sorted(by_id)), tuple(edges_sorted))

    # -- canonical form --------------------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        return {
            "format": CANONICAL_FORMAT,
            "dag_id": self.dag_id,
            "tasks": [task.canonical() for task in self.tasks],
            "edges": [[edge.upstream, edge.downstream] for edge in self.edges],
        }

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON: equal graphs, equal hashes, whatever the order."""
        cached = self._hash
        if cached is None:
            cached = hashlib.sha256(self.canonical_json().encode()).hexdigest()
            object.__setattr__(self, "_hash", cached)  # frozen: set once, bypassing attrs
        return cached

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "tasks": [
                {"task_id": task.task_id, "kind": task.kind, "attributes": dict(task.attributes)}
                for task in self.tasks
            ],
            "edges": [[edge.upstream, edge.downstream] for edge in self.edges],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        try:
            tasks = [
                Task(task["task_id"], task.get("kind"), task.get("attributes") or {})
                for task in data["tasks"]
            ]
            return cls.of(data["dag_id"], tasks, [tuple(edge) for edge in data["edges"]])
        except (KeyError, TypeError) as exc:
            raise InvalidGraphError(f"not a graph document: missing or bad {exc}") from None

    # -- reading ---------------------------------------------------------------------------

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(task_id)

    def downstream(self, task_id: str) -> list[str]:
        return [edge.downstream for edge in self.edges if edge.upstream == task_id]


@attrs.frozen
class GraphDiff:
    """What changed from graph ``old`` to graph ``new`` of one DAG."""

    tasks_added: tuple[str, ...]
    tasks_removed: tuple[str, ...]
    tasks_changed: tuple[str, ...]
    edges_added: tuple[Edge, ...]
    edges_removed: tuple[Edge, ...]

    @property
    def empty(self) -> bool:
        return not (self.tasks_added or self.tasks_removed or self.tasks_changed
                    or self.edges_added or self.edges_removed)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks_added": list(self.tasks_added),
            "tasks_removed": list(self.tasks_removed),
            "tasks_changed": list(self.tasks_changed),
            "edges_added": [[edge.upstream, edge.downstream] for edge in self.edges_added],
            "edges_removed": [[edge.upstream, edge.downstream] for edge in self.edges_removed],
        }


def diff(old: Graph, new: Graph) -> GraphDiff:
    """Tasks added/removed/changed (kind or attributes), edges added/removed."""
    before = {task.task_id: task for task in old.tasks}
    after = {task.task_id: task for task in new.tasks}
    old_edges, new_edges = set(old.edges), set(new.edges)
    return GraphDiff(
        tasks_added=tuple(sorted(after.keys() - before.keys())),
        tasks_removed=tuple(sorted(before.keys() - after.keys())),
        tasks_changed=tuple(sorted(
            task_id for task_id in before.keys() & after.keys()
            if before[task_id] != after[task_id]
        )),
        edges_added=tuple(sorted(new_edges - old_edges)),
        edges_removed=tuple(sorted(old_edges - new_edges)),
    )


# -- what the store answers ----------------------------------------------------------------


@attrs.frozen
class SourceRef:
    """Cached code: a repository's version, and the file within it (when one is meant)."""

    repo_id: str
    version_id: str
    path: str = ""


@attrs.frozen
class GraphVersion:
    """A graph version of a DAG. ``active`` is the DAG's: false once the repository that
    defined it last no longer does (``vanished_in``: that repository's source version and
    the file that used to define the DAG; ``vanished_at``: when that was recorded)."""

    dag_id: str
    number: int
    graph_hash: str
    task_count: int
    edge_count: int
    created_at: datetime
    latest: bool
    vanished_in: SourceRef | None = None
    vanished_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.vanished_in is None

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["active"] = self.active
        data["vanished_at"] = self.vanished_at.isoformat() if self.vanished_at else None
        return data


@attrs.frozen
class RecordResult:
    """``created``: a new version was stored. ``now_latest``: latest moved to ``version``
    (a new version, or an earlier one the DAG went back to)."""

    version: GraphVersion
    created: bool
    now_latest: bool


@attrs.frozen
class RunPin:
    """A run's pin. ``released_at``: when the run was released (its graph stays as history;
    its code may leave the caches)."""

    run_id: str
    dag_id: str
    version: GraphVersion
    source: SourceRef | None
    pinned_at: datetime
    released_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "dag_id": self.dag_id, "version": self.version.number,
            "graph_hash": self.version.graph_hash, "pinned_at": self.pinned_at.isoformat(),
            "source": attrs.asdict(self.source) if self.source else None,
            "released_at": self.released_at.isoformat() if self.released_at else None,
        }


@attrs.frozen
class ImportErrorRecord:
    repo_id: str
    version_id: str
    path: str
    message: str


@attrs.frozen
class Extraction:
    """One source version's extraction as recorded. ``recorded`` is false when it had been
    recorded before (by this or another node) and nothing was written. ``vanished``: the
    DAGs of this repository that this version no longer defines, now inactive."""

    source: SourceRef
    recorded: bool
    results: tuple[RecordResult, ...] = ()
    errors: tuple[ImportErrorRecord, ...] = ()
    vanished: tuple[str, ...] = ()


@attrs.frozen
class GcResult:
    """What graph gc removed (or, with ``dry_run``, would remove): graph versions as
    ``(dag_id, number)``, source versions as ``(repo_id, version_id)`` with the import errors
    and source links that went with them, and the inactive DAGs it forgot entirely."""

    removed: tuple[tuple[str, int], ...]
    dry_run: bool = False
    source_versions: tuple[tuple[str, str], ...] = ()
    import_errors: int = 0
    links: int = 0
    forgotten: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": [list(item) for item in self.removed], "dry_run": self.dry_run,
            "source_versions": [list(item) for item in self.source_versions],
            "import_errors": self.import_errors, "links": self.links,
            "forgotten": list(self.forgotten),
        }


@attrs.frozen
class UnstableDag:
    """A DAG whose graph keeps changing while its file does not (task ids from the clock,
    an order that leaks into ids or edges): ``changes`` of the ``pairs`` consecutive
    extractions of ``repo_id`` that both defined it from the same file (same sha256) gave a
    new graph. ``what`` names what keeps changing; ``last``: the newest such change."""

    dag_id: str
    repo_id: str
    path: str
    changes: int
    pairs: int
    what: tuple[str, ...]
    last: GraphDiff

    def describe(self) -> str:
        return (f"DAG {self.dag_id} ({self.repo_id}:{self.path}) got a new graph in "
                f"{self.changes} of {self.pairs} consecutive extractions that left its file "
                f"unchanged: {'; '.join(self.what)}")

    def to_json(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "repo_id": self.repo_id, "path": self.path,
                "changes": self.changes, "pairs": self.pairs, "what": list(self.what),
                "last": self.last.to_json()}
