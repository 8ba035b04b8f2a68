"""DAG graphs in SQL: versioned, linked to the code that produced them and to runs.

:class:`GraphStore` is the store; :mod:`dagfetch.graphs.extract` turns a cached version's DAG
files into :class:`Graph` values in a separate process; :class:`GraphPipeline` runs sync,
extraction and recording as one job, and follow mode for the other nodes.
"""

from typing import TYPE_CHECKING, Any

from dagfetch.graphs.errors import (
    GraphNotFoundError,
    GraphStoreError,
    InvalidGraphError,
    RunAlreadyPinnedError,
    SchemaNotReadyError,
)
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
    UnstableDag,
    diff,
)

if TYPE_CHECKING:
    from dagfetch.graphs.store import GraphStore


def __getattr__(name: str) -> Any:
    # the store brings SQLAlchemy and Alembic: loaded when first named, so that importing the
    # light parts of this package (its errors, its model) costs a command nothing
    if name == "GraphStore":
        from dagfetch.graphs.store import GraphStore

        return GraphStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Edge",
    "Extraction",
    "GcResult",
    "Graph",
    "GraphDiff",
    "GraphNotFoundError",
    "GraphStore",
    "GraphStoreError",
    "GraphVersion",
    "ImportErrorRecord",
    "InvalidGraphError",
    "RecordResult",
    "RunAlreadyPinnedError",
    "RunPin",
    "SchemaNotReadyError",
    "SourceRef",
    "Task",
    "UnstableDag",
    "diff",
]
