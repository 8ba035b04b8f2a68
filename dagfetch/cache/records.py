"""The JSON a repository keeps about its versions and its last syncs.

Files are replaced atomically (write to a temporary name, fsync, rename), so a reader never
sees half a record and a crash leaves the old one.
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

RECORD_FORMAT = 1


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
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


def version_to_json(version: Version, *, evicted: bool = False) -> dict[str, Any]:
    return {
        "format": RECORD_FORMAT,
        "repo_id": version.repo_id,
        "version_id": version.version_id,
        "source_url": version.source_url,
        "fetched_at": version.fetched_at.isoformat(),
        "backend_version": version.backend_version,
        "fingerprint": version.fingerprint,
        "refetchable": version.history,
        "evicted": evicted,
        "files": [f.to_json() for f in version.files],
    }


def version_from_json(layout: CacheLayout, data: dict[str, Any]) -> Version:
    return Version(
        repo_id=data["repo_id"],
        version_id=data["version_id"],
        path=str(layout.version(data["repo_id"], data["version_id"])),
        source_url=data["source_url"],
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
        files=tuple(CachedFile.from_json(f) for f in data["files"]),
        backend_version=data.get("backend_version"),
        fingerprint=data.get("fingerprint", ""),
        history=bool(data.get("refetchable", False)),
    )
