"""A third-party extractor for a made-up scheduler whose workflows are module-level dicts."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from dagfetch.graphs import Graph


def workflows(module: ModuleType) -> Iterator[Graph]:
    for value in vars(module).values():
        if isinstance(value, dict) and value.get("kind") == "workflow":
            steps = value["steps"]
            yield Graph.of(value["name"], list(steps),
                           [(up, down) for down, ups in steps.items() for up in ups])
