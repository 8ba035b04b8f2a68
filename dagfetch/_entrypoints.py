"""One place that reads entry points, so the importlib-metadata backport is chosen once."""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 12):
    from importlib.metadata import EntryPoint
    from importlib.metadata import entry_points as _entry_points
else:
    from importlib_metadata import EntryPoint
    from importlib_metadata import entry_points as _entry_points

__all__ = ["EntryPoint", "distribution_of", "entry_points"]


def entry_points(group: str) -> list[EntryPoint]:
    return list(_entry_points(group=group))


def distribution_of(ep: EntryPoint) -> tuple[str, str]:
    """(name, version) of the distribution that declared ``ep``."""
    dist: Any = getattr(ep, "dist", None)
    if dist is None:
        return ("<unknown>", "")
    return (dist.metadata["Name"] or dist.name, dist.version)
