"""Garbage collection: evict old versions, store idle trees, sweep unused contents.

For each repository, under its lock:

- a version that is not current, not pinned and not among the newest ``keep_versions`` (newest
  by when it became current, its publish order: re-fetching an old version does not make it
  new; versions never current come after those that were, newest fetched first) is
  *evicted*: its record is flagged (it stays, as the base other records may name), then its
  tree is removed; only the remote can bring it back;
- a kept version that is not current, not pinned and unused for ``grace_seconds`` (it stopped
  being current, or its tree was last built, that long ago) is *stored*: its tree is removed,
  its record and contents stay, and the next ``path()`` rebuilds the tree locally.

Trees go by :func:`~dagfetch.cache.trees.retire_tree` (marker dropped, renamed into the trash,
deleted there), so a gc killed at any point never leaves half a tree that is served or pinned;
gc empties the trash and the temporary files of killed writes it finds.

Then, under the objects lock, every object no kept version uses is removed, with what restores
that died half-way left behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from dagfetch.cache.layout import CacheLayout
from dagfetch.cache.locks import CacheLocks
from dagfetch.cache.objects import ObjectStore
from dagfetch.cache.pins import PinStore
from dagfetch.cache.records import RecordStore
from dagfetch.cache.trees import is_complete, remove_leftovers, retire_tree
from dagfetch.models import Version
from dagfetch.redact import get_logger

log = get_logger(__name__)

DEFAULT_TREE_GRACE = 600.0  # seconds a retired version keeps its tree for readers still in it


@attrs.frozen
class GcReport:
    evicted: tuple[tuple[str, str], ...]
    objects_removed: int
    bytes_freed: int
    dry_run: bool = False
    stored: tuple[tuple[str, str], ...] = ()  # trees removed; contents kept, rebuilt on use


@attrs.frozen
class Collector:
    layout: CacheLayout
    objects: ObjectStore
    records: RecordStore
    pins: PinStore
    locks: CacheLocks

    def collect(
        self,
        keep_versions: Mapping[str, int],
        *,
        default_keep: int,
        dry_run: bool,
        grace_seconds: float,
    ) -> GcReport:
        evicted: list[tuple[str, str]] = []
        stored: list[tuple[str, str]] = []
        now = time.time()
        for repo_id in self.records.repo_ids():
            keep = keep_versions.get(repo_id, default_keep)
            with self.locks.repo(repo_id):
                if not dry_run:
                    remove_leftovers(self.layout.trash(repo_id))
                    self.records.remove_leftovers(repo_id)
                current = self.records.current_id(repo_id)
                pinned = set(self.pins.of(repo_id))
                retired = self.records.state(repo_id).get("retired") or {}
                present = self._by_publish_order(repo_id)  # newest first
                kept = {v.version_id for v in present[:keep]} | pinned | {current}
                for version in present:
                    version_id = version.version_id
                    if version_id not in kept:
                        evicted.append((repo_id, version_id))
                        if not dry_run:
                            self.evict(repo_id, version)
                    elif (
                        version_id != current
                        and version_id not in pinned
                        and os.path.isdir(version.path)
                        and now - self._last_use(version, retired) >= grace_seconds
                    ):
                        stored.append((repo_id, version_id))
                        if not dry_run:
                            self._store(repo_id, version)
        removed, freed = self._sweep(set(evicted) if dry_run else set(), dry_run=dry_run)
        return GcReport(tuple(evicted), removed, freed, dry_run, tuple(stored))

    def _present(self, repo_id: str) -> list[Version]:
        return [r.version for r in self.records.all(repo_id) if r.present]

    def _by_publish_order(self, repo_id: str) -> list[Version]:
        """Present versions, the one that became current last first; versions never current
        after all that were, newest fetched first."""
        order = self.records.publish_order(repo_id)
        return sorted(
            self._present(repo_id),
            key=lambda v: (order.get(v.version_id, 0.0), v.fetched_at.timestamp()),
            reverse=True,
        )

    def _retire(self, repo_id: str, version: Version) -> None:
        marker = self.layout.tree_marker(repo_id, version.version_id)
        retire_tree(Path(version.path), marker, self.layout.trash(repo_id))

    def _store(self, repo_id: str, version: Version) -> None:
        with self.locks.objects():  # a reader's restore of this version must not interleave
            self._retire(repo_id, version)

    def _last_use(self, version: Version, retired: Mapping[str, float]) -> float:
        """When readers last had reason to enter a version's tree: it stopped being current,
        or its tree was (re)built, for instance restored for a reader."""
        marker = self.layout.tree_marker(version.repo_id, version.version_id)
        try:
            built = os.stat(marker).st_mtime if is_complete(marker, version.path) else 0.0
        except FileNotFoundError:
            built = 0.0
        return max(float(retired.get(version.version_id, 0)), built)

    def evict(self, repo_id: str, version: Version) -> None:
        """Flag a version evicted and remove its tree (the caller holds the repository lock)."""
        log.info("%s: evicting version %s", repo_id, version.version_id)
        # flag first: a crash between the two steps leaves an evicted record and an orphan
        # tree, which the next sync removes
        with self.locks.objects():  # a reader's restore of this version must not interleave
            self.records.mark_evicted(repo_id, version.version_id)
            self._retire(repo_id, version)

    def _sweep(self, would_evict: set[tuple[str, str]], *, dry_run: bool) -> tuple[int, int]:
        """Remove (or, in a dry run, count) the objects no kept version uses: (count, bytes).
        A dry run evicted nothing, so it leaves out what it would have evicted."""
        removed = freed = 0
        with self.locks.objects():
            used: set[str] = set()
            for repo_id in self.records.repo_ids():
                for version in self._present(repo_id):
                    if (repo_id, version.version_id) in would_evict:
                        continue
                    used.update(f.sha256 for f in version.files if f.kind == "file")
            for sha in self.objects.all_objects():
                if sha not in used:
                    removed += 1
                    if dry_run:
                        freed += self.layout.object_path(sha).stat().st_size
                    else:
                        freed += self.objects.remove(sha)
            if not dry_run:
                remove_leftovers(self.layout.internal / "restore")  # restores that died
        return removed, freed

