"""What a repository keeps about itself: its version records, its state, its ``current``.

Files are replaced atomically (write to a temporary name, fsync, rename), so a reader never
sees half a record and a crash leaves the old one; ``current`` is a symlink replaced the
same way.

A version's file list is most of its record, and consecutive versions share nearly all of it,
so a record may store only its differences from a ``base`` version (``changed`` entries and
``removed`` paths), with a full list every :data:`MAX_CHAIN` versions. Records of evicted
versions are kept (flagged), so a base is never missing. :class:`RecordStore` is the only
reader of records (their JSON: :mod:`~dagfetch.cache.record_json`): it follows the chains,
refuses loops, and reads a record file again only when it was replaced since.

Everything here can be rebuilt by syncing, so what cannot be read (a record or ``state.json``
that is not JSON, or not of the shape written here; a record whose base is gone) is moved aside
into ``<repo>/.meta/quarantine/`` with a warning and treated as absent: the next sync fetches
what it described again instead of failing until someone edits the cache by hand.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from dagfetch.cache.layout import CacheLayout, check_version_id
from dagfetch.cache.metadata import UnreadableMetadata, clean_state, read_json, write_json_atomic
from dagfetch.cache.record_json import (
    delta_is_worth_it,
    differences,
    files_from_json,
    version_from_json,
    version_to_json,
)
from dagfetch.errors import CacheError
from dagfetch.models import CachedFile, Version
from dagfetch.redact import get_logger

log = get_logger(__name__)

MAX_CHAIN = 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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


class RecordStore:
    """Records, state and the ``current`` pointer of every repository under one cache root.

    Writers hold the repository's lock (publishing also the objects lock); readers take none.
    """

    def __init__(self, layout: CacheLayout) -> None:
        self.layout = layout
        # repo_id -> version_id -> full file list: a published record never changes its files
        self._files_memo: dict[str, dict[str, tuple[CachedFile, ...]]] = {}
        # repo_id -> version_id -> (the record file's identity, what it said): a check for
        # changes reads the current version's record every time, and parsing it grew with
        # the version (150 ms at 100,000 files); a rewritten record is a new file (written
        # aside, renamed), so its identity tells whether the memo still holds
        self._records_memo: dict[str, dict[str, tuple[tuple[int, int, int], VersionRecord]]] = {}

    # -- repositories and current --------------------------------------------------------

    def repo_ids(self) -> list[str]:
        root = self.layout.root
        if not root.exists():
            return []
        return sorted(
            p.name for p in root.iterdir() if not p.name.startswith(".") and (p / ".meta").is_dir()
        )

    def current_id(self, repo_id: str) -> str | None:
        """The version ``current`` names; None if it names none, or no valid version id
        (a damaged link: the next sync replaces it)."""
        try:
            target = os.readlink(self.layout.current_link(repo_id))
        except OSError:
            return None
        try:
            return check_version_id(target)
        except CacheError:
            return None

    def switch_current(self, repo_id: str, version_id: str) -> None:
        previous = self.current_id(repo_id)
        link = self.layout.current_link(repo_id)
        tmp = link.with_name(f".current-{uuid.uuid4().hex}")
        os.symlink(check_version_id(version_id), tmp)
        os.replace(tmp, link)
        if previous == version_id:
            return
        # from here on the switch is done: what follows is bookkeeping, and a failure to
        # write it (a full disk) must not turn the switch into a failed sync
        try:
            state = self.state(repo_id)
            now = time.time()
            # gc ranks versions by when they became current (publish order)
            became = dict(state.get("became_current") or {})
            became[version_id] = now
            changes: dict[str, object] = {"became_current": became}
            if previous:
                # readers may still be inside the version they resolved before the switch:
                # gc keeps its tree for a grace period counted from now
                retired = dict(state.get("retired") or {})
                retired[previous] = now
                changes["retired"] = retired
            self.update_state(repo_id, **changes)
        except (OSError, CacheError) as exc:
            log.warning("%s: switched to %s but could not record when: %s", repo_id,
                        version_id, exc)

    # -- reading records -------------------------------------------------------------------

    def get(self, repo_id: str, version_id: str) -> VersionRecord | None:
        """The record of ``version_id``, its file list whole, or None if there is none.
        Read again only when the file is another one than last time."""
        memo = self._records_memo.setdefault(repo_id, {})
        try:
            st = os.stat(self.layout.record(repo_id, version_id))
        except FileNotFoundError:
            memo.pop(version_id, None)
            return None
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = memo.get(version_id)
        if seen is not None and seen[0] == identity:
            return seen[1]
        data = self.raw(repo_id, version_id)
        record = None if data is None else self._record(repo_id, version_id, data)
        if record is None:
            memo.pop(version_id, None)
        else:
            memo[version_id] = (identity, record)
        return record

    def _record(self, repo_id: str, version_id: str, data: dict[str, Any]) -> VersionRecord | None:
        """:meth:`get`, given the record's JSON as :meth:`raw` read it."""
        try:
            if data.get("repo_id") != repo_id or data.get("version_id") != version_id:
                raise UnreadableMetadata("it names another repository or version")
            files = self._files(repo_id, version_id, data)
            version = version_from_json(self.layout, data, files)
        except (UnreadableMetadata, KeyError, TypeError, ValueError, AttributeError) as exc:
            self._files_memo.get(repo_id, {}).pop(version_id, None)
            self.quarantine(repo_id, self.layout.record(repo_id, version_id), str(exc))
            return None
        return VersionRecord(version, bool(data.get("evicted")))

    def all(self, repo_id: str) -> list[VersionRecord]:
        """Every record of a repository, newest first."""
        folder = self.layout.records(repo_id)
        if not folder.exists():
            return []
        records = []
        for path in folder.glob("*.json"):
            try:
                version_id = check_version_id(path.stem)
            except CacheError:  # `.json`, `x y.json`: no record of ours, and no version id
                self.quarantine(repo_id, path, "not named by a version id")
                continue
            record = self.get(repo_id, version_id)
            if record is not None:
                records.append(record)
        records.sort(key=lambda r: r.version.fetched_at, reverse=True)
        return records

    def raw(self, repo_id: str, version_id: str) -> dict[str, Any] | None:
        """The record's JSON as stored (a delta is not resolved), or None."""
        path = self.layout.record(repo_id, version_id)
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        except UnreadableMetadata as exc:
            self.quarantine(repo_id, path, str(exc))
            return None
        if not isinstance(data, dict):
            self.quarantine(repo_id, path, f"a JSON {type(data).__name__}, not an object")
            return None
        return data

    def quarantine(self, repo_id: str, path: Path, why: str) -> None:
        """Move an unreadable metadata file aside (kept for a post-mortem) and say so."""
        folder = self.layout.quarantine(repo_id)
        target = folder / f"{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except FileNotFoundError:
            return  # another reader moved it first
        except OSError as exc:  # a read-only cache: leave it, it is ignored all the same
            log.warning("%s: ignoring unreadable %s (%s); could not move it aside: %s",
                        repo_id, path, why, exc.strerror)
            return
        log.warning("%s: moved unreadable %s to %s (%s); syncing rebuilds what it described",
                    repo_id, path, target, why)

    def remove_leftovers(self, repo_id: str) -> list[str]:
        """Remove the temporary files of metadata writes that were killed (the caller holds
        the repository's lock, so no write is in progress); their names."""
        removed = []
        for folder in (self.layout.meta(repo_id), self.layout.records(repo_id)):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                # write_json_atomic's temporary names: ".<name>.<random>"
                if entry.name.startswith(".") and ".json." in entry.name and entry.is_file():
                    entry.unlink(missing_ok=True)
                    removed.append(entry.name)
        if removed:
            log.info("%s: removed temporary files of killed writes: %s", repo_id, removed)
        return removed

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
                if not isinstance(base_id, str):
                    raise UnreadableMetadata("its base is not a version id")
                base = self.raw(repo_id, base_id)
                if base is None or base_id in visiting or base_id == version_id:
                    why = "lost its base" if base is None else "is in a loop of bases through"
                    raise UnreadableMetadata(f"record of {version_id} {why} {base_id}")
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
            base = self._record(version.repo_id, delta_on, base_data)  # read once, above
            if base is not None:
                delta = differences(version, base.version)
                if delta_is_worth_it(delta, version):
                    depth = base_data.get("depth", 0) + 1
                    return version_to_json(version, base=base.version, depth=depth,
                                           delta=delta)
        return version_to_json(version)

    def touch(self, version: Version) -> None:
        """Rewrite a record with new change tokens for the same bytes (a touched file)."""
        # a full list: versions stored as deltas on this one then see the new tokens, which
        # name the same bytes (a touch never changes content)
        self.write(version)
        self._files_memo.pop(version.repo_id, None)
        self._records_memo.pop(version.repo_id, None)

    def publish_order(self, repo_id: str) -> dict[str, float]:
        """version_id -> when it became current (else when it stopped being current, for
        versions switched before that was recorded): the order gc keeps versions in."""
        state = self.state(repo_id)
        order = dict(state.get("retired") or {})
        order.update(state.get("became_current") or {})
        return order

    def mark_evicted(self, repo_id: str, version_id: str) -> None:
        """Flag a record evicted; it stays, as the base other records may name."""
        data = self.raw(repo_id, version_id) or {}
        write_json_atomic(self.layout.record(repo_id, version_id), {**data, "evicted": True})

    # -- state -----------------------------------------------------------------------------

    def state(self, repo_id: str) -> dict[str, Any]:
        """The repository's state; what cannot be read is moved aside (all of it rebuilds)."""
        path = self.layout.state(repo_id)
        try:
            data = read_json(path)
        except FileNotFoundError:
            return {}
        except UnreadableMetadata as exc:
            self.quarantine(repo_id, path, str(exc))
            return {}
        if not isinstance(data, dict):
            self.quarantine(repo_id, path, f"a JSON {type(data).__name__}, not an object")
            return {}
        clean, dropped = clean_state(data)
        if dropped:
            log.warning("%s: ignoring values of the wrong type in %s: %s", repo_id, path,
                        ", ".join(dropped))
        return clean

    def update_state(self, repo_id: str, **changes: object) -> None:
        state = self.state(repo_id)
        state.update(changes)
        write_json_atomic(self.layout.state(repo_id), state)
