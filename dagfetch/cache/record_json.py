"""A version record as JSON: a full file list, or a delta on a base version (``changed``
entries and ``removed`` paths), and back. :class:`~dagfetch.cache.records.RecordStore` is the
only reader and writer of the files; this module is their format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dagfetch.cache.layout import CacheLayout
from dagfetch.cache.metadata import UnreadableMetadata
from dagfetch.models import CachedFile, Version

RECORD_FORMAT = 2


def version_to_json(
    version: Version, *, evicted: bool = False, base: Version | None = None, depth: int = 0,
    delta: Delta | None = None,
) -> dict[str, Any]:
    """The record of ``version``: a full file list, or its differences from ``base``
    (``delta``: those differences, when the caller has them already)."""
    data = _header(version, evicted)
    if base is None:
        data["files"] = [f.to_json() for f in version.files]
        data["depth"] = 0
        return data
    changed, removed = delta if delta is not None else differences(version, base)
    data["base"] = base.version_id
    data["depth"] = depth
    data["changed"] = [f.to_json() for f in changed]
    data["removed"] = removed
    return data


# the files of a version not in its base as they are, and the paths of the base it lacks
Delta = tuple[list[CachedFile], list[str]]


def differences(version: Version, base: Version) -> Delta:
    """What a delta record of ``version`` on ``base`` holds."""
    before = {f.path: f for f in base.files}
    # files shared by the two versions are often the very same objects (the sync took them
    # from the base's record): `is` answers those without comparing field by field
    changed = [f for f in version.files if (b := before.get(f.path)) is not f and b != f]
    if len(before) == len(version.files) - len(changed):
        return changed, []  # every path of the base is still there
    paths = {f.path for f in version.files}
    return changed, sorted(set(before) - paths)


def delta_is_worth_it(delta: Delta, version: Version) -> bool:
    """A delta (see :func:`differences`) pays off while it is well under the full list."""
    return len(delta[0]) * 2 < len(version.files)


def files_from_json(
    data: dict[str, Any], base_files: tuple[CachedFile, ...] | None
) -> tuple[CachedFile, ...]:
    """The full file list of a record, given its base's list when it is a delta."""
    if "files" in data:
        return tuple(CachedFile.from_json(f) for f in data["files"])
    if base_files is None:
        raise UnreadableMetadata(
            f"version {data.get('version_id')}: record has no files nor base"
        )
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
    for key in ("repo_id", "version_id", "source_url", "fetched_at"):
        if not isinstance(data.get(key), str):
            raise UnreadableMetadata(f"record field {key!r} is missing or not a string")
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
