"""An extractor that declares ``preload`` and ``environment``, as the Airflow one does."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from types import ModuleType

from dagfetch.graphs import Graph, Task


def graphs(module: ModuleType) -> Iterator[Graph]:
    heavy = sys.modules.get("tests.graphs.preloaded_module")
    # imported by the worker before it forked this child: the worker's pid, not ours
    where = "worker" if heavy is not None and os.getppid() == heavy.IMPORTED_IN else "child"
    yield Graph.of(module.DAG_ID, [Task(f"imported-in-{where}"),
                                   Task(f"env-{os.environ.get('PRELOAD_TEST_SETTING')}")], [])


graphs.preload = ("tests.graphs.preloaded_module",)  # type: ignore[attr-defined]
graphs.environment = {"PRELOAD_TEST_SETTING": "from-extractor"}  # type: ignore[attr-defined]
