"""DAG graphs in SQL: versioned, linked to the code that produced them and to runs.

:class:`GraphStore` is the store; :mod:`dagfetch.graphs.extract` turns a cached version's DAG
files into :class:`Graph` values in a separate process; :class:`GraphPipeline` runs sync,
extraction and recording as one job, and follow mode for the other nodes.
"""

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
    diff,
)
from dagfetch.graphs.store import GraphStore

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
    "diff",
]
