"""The JSON a repository keeps about its versions and its last syncs.

Files are replaced atomically (write to a temporary name, fsync, rename), so a reader never
sees half a record and a crash leaves the old one.

A version's file list is most of its record, and consecutive versions share nearly all of it,
so a record may store only its differences from a ``base`` version (``changed`` entries and
``removed`` paths), with a full list every :data:`MAX_CHAIN` versions. Records of evicted
versions are kept (flagged), so a base is never missing.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dagfetch.cache.layout import CacheLayout
from dagfetch.errors import CacheError
from dagfetch.models import CachedFile, Version

RECORD_FORMAT = 2
MAX_CHAIN = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"), sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise CacheError(
            f"{path}: corrupt metadata ({exc.msg}); remove it and sync again"
        ) from None


def version_to_json(
    version: Version, *, evicted: bool = False, base: Version | None = None, depth: int = 0
) -> dict[str, Any]:
    """The record of ``version``: a full file list, or its differences from ``base``."""
    data = _header(version, evicted)
    if base is None:
        data["files"] = [f.to_json() for f in version.files]
        data["depth"] = 0
        return data
    before = {f.path: f for f in base.files}
    paths = {f.path for f in version.files}
    data["base"] = base.version_id
    data["depth"] = depth
    data["changed"] = [f.to_json() for f in version.files if before.get(f.path) != f]
    data["removed"] = sorted(set(before) - paths)
    return data


def delta_is_worth_it(version: Version, base: Version) -> bool:
    """A delta pays off while it is well under the full list."""
    before = {f.path: f for f in base.files}
    changed = sum(1 for f in version.files if before.get(f.path) != f)
    return changed * 2 < len(version.files)


def files_from_json(
    data: dict[str, Any], base_files: tuple[CachedFile, ...] | None
) -> tuple[CachedFile, ...]:
    """The full file list of a record, given its base's list when it is a delta."""
    if "files" in data:
        return tuple(CachedFile.from_json(f) for f in data["files"])
    if base_files is None:
        raise CacheError(f"version {data.get('version_id')}: record needs its base")
    files = {f.path: f for f in base_files}
    for path in data.get("removed", []):
        files.pop(path, None)
    for entry in data.get("changed", []):
        changed = CachedFile.from_json(entry)
        files[changed.path] = changed
    return tuple(files[p] for p in sorted(files))


def _header(version: Version, evicted: bool) -> dict[str, Any]:
    return {
        "format": RECORD_FORMAT,
        "repo_id": version.repo_id,
        "version_id": version.version_id,
        "source_url": version.source_url,
        "fetched_at": version.fetched_at.isoformat(),
        "backend_version": version.backend_version,
        "fingerprint": version.fingerprint,
        "refetchable": version.refetchable,
        "evicted": evicted,
    }


def version_from_json(
    layout: CacheLayout, data: dict[str, Any], files: tuple[CachedFile, ...]
) -> Version:
    return Version(
        repo_id=data["repo_id"],
        version_id=data["version_id"],
        path=str(layout.version(data["repo_id"], data["version_id"])),
        source_url=data["source_url"],
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
        files=files,
        backend_version=data.get("backend_version"),
        fingerprint=data.get("fingerprint", ""),
        refetchable=bool(data.get("refetchable", False)),
    )
