"""What a repository keeps about itself: its version records, its state, its ``current``.

Files are replaced atomically (write to a temporary name, fsync, rename), so a reader never
sees half a record and a crash leaves the old one; ``current`` is a symlink replaced the
same way.

A version's file list is most of its record, and consecutive versions share nearly all of it,
so a record may store only its differences from a ``base`` version (``changed`` entries and
``removed`` paths), with a full list every :data:`MAX_CHAIN` versions. Records of evicted
versions are kept (flagged), so a base is never missing. :class:`RecordStore` is the only
reader of records: it follows the chains, refuses loops and memoizes the file lists.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from dagfetch.cache.layout import CacheLayout, check_version_id
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


@attrs.frozen
class VersionRecord:
    """One version as its record describes it. An evicted version keeps its record (a delta
    chain must not lose its base) but not its contents: only the remote can bring it back,
    when ``version.refetchable``."""

    version: Version
    evicted: bool = False

    @property
    def present(self) -> bool:
        return not self.evicted


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


class RecordStore:
    """Records, state and the ``current`` pointer of every repository under one cache root.

    Writers hold the repository's lock (publishing also the objects lock); readers take none.
    """

    def __init__(self, layout: CacheLayout) -> None:
        self.layout = layout
        # repo_id -> version_id -> full file list: a published record never changes its files
        self._files_memo: dict[str, dict[str, tuple[CachedFile, ...]]] = {}

    # -- repositories and current --------------------------------------------------------

    def repo_ids(self) -> list[str]:
        root = self.layout.root
        if not root.exists():
            return []
        return sorted(
            p.name for p in root.iterdir() if not p.name.startswith(".") and (p / ".meta").is_dir()
        )

    def current_id(self, repo_id: str) -> str | None:
        try:
            return os.readlink(self.layout.current_link(repo_id))
        except (FileNotFoundError, OSError):
            return None

    def switch_current(self, repo_id: str, version_id: str) -> None:
        previous = self.current_id(repo_id)
        link = self.layout.current_link(repo_id)
        tmp = link.with_name(f".current-{uuid.uuid4().hex}")
        os.symlink(check_version_id(version_id), tmp)
        os.replace(tmp, link)
        if previous and previous != version_id:
            # readers may still be inside the version they resolved before the switch: gc
            # keeps its tree for a grace period counted from now
            retired = dict(self.state(repo_id).get("retired") or {})
            retired[previous] = time.time()
            self.update_state(repo_id, retired=retired)

    # -- reading records -------------------------------------------------------------------

    def get(self, repo_id: str, version_id: str) -> VersionRecord | None:
        """The record of ``version_id``, its file list whole, or None if there is none."""
        data = self.raw(repo_id, version_id)
        if data is None:
            return None
        files = self._files(repo_id, version_id, data)
        return VersionRecord(version_from_json(self.layout, data, files), bool(data.get("evicted")))

    def all(self, repo_id: str) -> list[VersionRecord]:
        """Every record of a repository, newest first."""
        folder = self.layout.records(repo_id)
        if not folder.exists():
            return []
        found = [self.get(repo_id, p.stem) for p in folder.glob("*.json")]
        records = [r for r in found if r is not None]
        records.sort(key=lambda r: r.version.fetched_at, reverse=True)
        return records

    def raw(self, repo_id: str, version_id: str) -> dict[str, Any] | None:
        """The record's JSON as stored (a delta is not resolved), or None."""
        path = self.layout.record(repo_id, version_id)
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        if not isinstance(data, dict):
            raise CacheError(f"{path}: corrupt metadata; remove it and sync again")
        return data

    def _files(
        self,
        repo_id: str,
        version_id: str,
        data: dict[str, Any],
        visiting: frozenset[str] = frozenset(),
    ) -> tuple[CachedFile, ...]:
        """A record's full file list, following its delta chain."""
        memo = self._files_memo.setdefault(repo_id, {})
        if version_id not in memo:
            base_files = None
            if "base" in data:
                base_id = data["base"]
                base = self.raw(repo_id, base_id)
                if base is None or base_id in visiting or base_id == version_id:
                    why = "lost its base" if base is None else "is in a loop of bases through"
                    raise CacheError(
                        f"{repo_id}: record of {version_id} {why} {base_id}; remove "
                        f"{self.layout.records(repo_id)} and sync again"
                    )
                base_files = self._files(repo_id, base_id, base, visiting | {version_id})
            memo[version_id] = files_from_json(data, base_files)
        return memo[version_id]

    # -- writing records (the caller holds the repository lock) -----------------------------

    def write(self, version: Version, *, delta_on: str | None = None) -> None:
        """Write ``version``'s record: a delta on the version ``delta_on`` while that chain is
        short and the delta small, else (and without ``delta_on``) a full list."""
        repo_id = version.repo_id
        write_json_atomic(
            self.layout.record(repo_id, version.version_id), self._to_json(version, delta_on)
        )
        self._files_memo.get(repo_id, {}).pop(version.version_id, None)

    def _to_json(self, version: Version, delta_on: str | None) -> dict[str, Any]:
        base_data = self.raw(version.repo_id, delta_on) if delta_on else None
        if delta_on and base_data is not None and base_data.get("depth", 0) < MAX_CHAIN:
            base = self.get(version.repo_id, delta_on)
            if base is not None and delta_is_worth_it(version, base.version):
                depth = base_data.get("depth", 0) + 1
                return version_to_json(version, base=base.version, depth=depth)
        return version_to_json(version)

    def touch(self, version: Version) -> None:
        """Rewrite a record with new change tokens for the same bytes (a touched file)."""
        # a full list: versions stored as deltas on this one then see the new tokens, which
        # name the same bytes (a touch never changes content)
        self.write(version)
        self._files_memo.pop(version.repo_id, None)

    def mark_evicted(self, repo_id: str, version_id: str) -> None:
        """Flag a record evicted; it stays, as the base other records may name."""
        data = self.raw(repo_id, version_id) or {}
        write_json_atomic(self.layout.record(repo_id, version_id), {**data, "evicted": True})

    # -- state -----------------------------------------------------------------------------

    def state(self, repo_id: str) -> dict[str, Any]:
        path = self.layout.state(repo_id)
        data = read_json(path) if path.exists() else {}
        return data if isinstance(data, dict) else {}

    def update_state(self, repo_id: str, **changes: object) -> None:
        state = self.state(repo_id)
        state.update(changes)
        write_json_atomic(self.layout.state(repo_id), state)
