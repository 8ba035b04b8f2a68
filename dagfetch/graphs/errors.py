"""Errors of the graph store; all are :class:`dagfetch.errors.DagfetchError`.

::

    DagfetchError
    ├── ExtractionError             extraction as a whole could not run (worker, extractor)
    └── GraphStoreError             the database failed us or holds something unexpected
        ├── InvalidGraphError       a graph that cannot be stored (duplicate task, dangling edge)
        ├── SchemaNotReadyError     the database is not at the newest schema: run `db upgrade`
        ├── GraphNotFoundError      no such DAG, version or run (also a LookupError)
        └── RunAlreadyPinnedError   a run keeps the graph it was first pinned to

Messages name the database by its URL with the password hidden, never the password itself.
"""

from __future__ import annotations

from dagfetch.errors import DagfetchError


class GraphStoreError(DagfetchError):
    """The graph store cannot do what was asked."""


class InvalidGraphError(GraphStoreError, ValueError):
    """A graph breaks a rule of :class:`dagfetch.graphs.model.Graph`."""


class SchemaNotReadyError(GraphStoreError):
    """The database schema is missing or older than this dagfetch."""


class GraphNotFoundError(GraphStoreError, LookupError):
    """No such DAG, graph version or run in the store."""


class RunAlreadyPinnedError(GraphStoreError):
    """A run asked to move to another graph: a run's graph never changes once pinned."""


class ExtractionError(DagfetchError):
    """Extraction as a whole could not run (the worker would not start, bad extractor name).
    A DAG file that fails is not this: it becomes an import error of that file."""
