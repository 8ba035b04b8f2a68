"""A workspace over one repository: what most backend tests (and benchmarks) start from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagfetch.manifest import parse_manifest
from dagfetch.registry import Registry
from dagfetch.testing.remote import Remote
from dagfetch.workspace import Workspace


def one_repository(
    target: str | Remote,
    root: Path,
    *,
    repo_id: str = "r",
    cache: str = "cache",
    registry: Registry | None = None,
    manifest: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Workspace:
    """A :class:`Workspace` whose manifest lists one repository, ``repo_id``.

    ``target`` is a :class:`Remote` (its ``url`` and ``entry`` go into the entry) or a URL or
    path. ``fields`` are more manifest fields of the entry (``keep_versions``, ``ref``...),
    ``manifest`` more top-level keys (``database``...). Relative paths resolve against
    ``root``, and the cache lives in ``root / cache``.
    """
    if isinstance(target, str):
        entry: dict[str, Any] = {"url": target}
    else:
        entry = {"url": target.url, **target.entry}
    entry.update(fields)
    data = {"dag_repositories": {repo_id: entry}, **(manifest or {})}
    return Workspace(parse_manifest(data, base_dir=root), cache_root=root / cache,
                     registry=registry)
