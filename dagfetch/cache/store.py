"""The cache as callers see it: :class:`VersionCache`, one object over the parts below.

The rules that make the cache safe to share between processes on one machine:

- A version is built in ``.dagfetch/staging`` and appears under ``<repo>/<version_id>`` by one
  ``rename``; its record is written after, and a tree without a record is an orphan the next
  sync removes. So a reader never sees a partial version, and a killed sync leaves nothing.
- ``current`` is a symlink replaced by ``rename``: a reader gets the old or the new version.
- Syncs and gc of one repository take its lock; adding objects and sweeping them take the
  objects lock, always after a repository lock (:mod:`~dagfetch.cache.locks`).
- Version trees are read-only. A kept version is *materialized* (its tree exists) or
  *stored* (its record and contents are kept, and its tree is rebuilt from local contents on
  first use, in milliseconds, with no network). gc keeps trees for the current version, pinned
  versions and versions that stopped being current less than a grace period ago; it evicts
  (drops record contents too) versions beyond each repository's newest ``keep_versions``.

The parts: :mod:`~dagfetch.cache.records` (records, state, ``current``),
:mod:`~dagfetch.cache.publish` (staging, verify, publish), :mod:`~dagfetch.cache.gc`,
:mod:`~dagfetch.cache.pins`, :mod:`~dagfetch.cache.trees`, :mod:`~dagfetch.cache.objects`.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from dagfetch.cache.layout import CacheLayout, check_version_id, default_cache_root
from dagfetch.cache.locks import DEFAULT_LOCK_TIMEOUT, CacheLocks
from dagfetch.cache.objects import ObjectStore
from dagfetch.cache.records import RecordStore, VersionRecord
from dagfetch.errors import CacheError, VersionNotFoundError
from dagfetch.models import Version
from dagfetch.redact import get_logger

if TYPE_CHECKING:
    # gc, audit and pins are imported when asked for: a sync uses none. Publishing and
    # trees too: a sync that finds nothing new builds no version
    from dagfetch.cache.audit import Auditor, VerifyReport
    from dagfetch.cache.gc import Collector, GcReport
    from dagfetch.cache.pins import PinStore
    from dagfetch.cache.publish import PlannedFile, Published, Publisher, Staging, VerifiedFiles

# GcReport and PlannedFile lived here in 0.1.0; importing them from here keeps working
__all__ = ["GcReport", "PlannedFile", "VersionCache", "VersionEntry", "VersionRecord"]


def __getattr__(name: str) -> Any:
    if name == "GcReport":
        from dagfetch.cache.gc import GcReport

        return GcReport
    if name == "PlannedFile":
        from dagfetch.cache.publish import PlannedFile

        return PlannedFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

log = get_logger(__name__)


@attrs.frozen
class VersionEntry:
    """A version as ``versions`` lists it."""

    version: Version
    present: bool
    current: bool
    pinned_by: tuple[str, ...]
    materialized: bool = True

    @property
    def refetchable(self) -> bool:
        return self.version.refetchable


class VersionCache:
    """The cache root: versions of every repository, their records, pins and objects."""

    def __init__(
        self, root: str | Path | None = None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ):
        self.layout = CacheLayout(Path(root) if root is not None else default_cache_root())
        self.objects = ObjectStore(self.layout)
        self.records = RecordStore(self.layout)
        self.locks = CacheLocks(self.layout, lock_timeout)

    @functools.cached_property
    def _publisher(self) -> Publisher:
        from dagfetch.cache.publish import Publisher

        return Publisher(self.layout, self.objects, self.records, self.locks)

    @functools.cached_property
    def _pins(self) -> PinStore:
        # a sync that finds nothing new never reads a pin: imported on first use
        from dagfetch.cache.pins import PinStore

        return PinStore(self.layout)

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def lock_timeout(self) -> float:
        return self.locks.timeout

    @lock_timeout.setter
    def lock_timeout(self, seconds: float) -> None:
        self.locks.timeout = seconds

    # -- locks ---------------------------------------------------------------------------

    def repo_lock(self, repo_id: str, timeout: float | None = None) -> AbstractContextManager[None]:
        return self.locks.repo(repo_id, timeout)

    def objects_lock(self) -> AbstractContextManager[None]:
        return self.locks.objects()

    # -- reading -------------------------------------------------------------------------

    def repo_ids(self) -> list[str]:
        return self.records.repo_ids()

    def current_id(self, repo_id: str) -> str | None:
        return self.records.current_id(repo_id)

    def record(self, repo_id: str, version_id: str) -> VersionRecord | None:
        """The version's record (present or evicted), or None if there is no record."""
        return self.records.get(repo_id, version_id)

    def get(self, repo_id: str, version_id: str) -> Version:
        """A kept version, its tree rebuilt from local contents if gc stored it; or
        VersionNotFoundError saying why not."""
        found = self.record(repo_id, check_version_id(version_id))
        if found is None:
            raise VersionNotFoundError(f"{repo_id}: no version {version_id!r} in {self.root}")
        version = found.version
        if found.evicted:
            how = (
                "fetch it again with `dagfetch path` / Workspace.path"
                if version.refetchable
                else "the remote keeps no history, so it cannot be re-fetched"
            )
            raise VersionNotFoundError(f"{repo_id}: version {version_id} was evicted; {how}")
        if not self.materialized(repo_id, version_id):
            self._restore(repo_id, version)
        return version

    def materialized(self, repo_id: str, version_id: str) -> bool:
        """Whether the version's tree is there, whole: decided by its completion marker."""
        from dagfetch.cache.trees import is_complete

        return is_complete(
            self.layout.tree_marker(repo_id, version_id), self.layout.version(repo_id, version_id)
        )

    def _restore(self, repo_id: str, version: Version) -> None:
        """Rebuild a stored version's tree from local contents. Takes only the objects lock
        (a reader must not wait for a long sync); a racing restore of the same version is
        harmless, the first rename wins."""
        from dagfetch.cache.trees import (
            build_tree,
            is_complete,
            make_read_only,
            mark_complete,
            move_into_place,
            retire_tree,
            scratch_folder,
        )

        with self.objects_lock(), scratch_folder(self.layout.internal / "restore") as scratch:
            # gc evicts under this lock too: the record read before may be stale
            data = self.records.raw(repo_id, version.version_id)
            if data is None or data.get("evicted"):
                raise VersionNotFoundError(
                    f"{repo_id}: version {version.version_id} was evicted meanwhile"
                )
            marker = self.layout.tree_marker(repo_id, version.version_id)
            final = Path(version.path)
            if is_complete(marker, final):
                return  # another reader's restore won
            if final.is_dir() and _tree_matches(final, version):
                mark_complete(marker)  # whole, but unmarked: a cache of 0.1.0, or a kill
                return
            retire_tree(final, marker, scratch / "trash")  # half a tree: never served
            tree = scratch / "tree"
            build_tree(self.objects, str(tree), version.files)
            make_read_only(tree)
            move_into_place(tree, final)
            mark_complete(marker)
        log.info("%s: rebuilt stored version %s from local contents", repo_id, version.version_id)

    def current(self, repo_id: str) -> Version | None:
        version_id = self.current_id(repo_id)
        return self.get(repo_id, version_id) if version_id else None

    def path(self, repo_id: str, version_id: str | None = None) -> Path:
        """Filesystem path of a version (default: current), resolved once so it never moves."""
        if version_id is None:
            version_id = self.current_id(repo_id)
            if version_id is None:
                raise VersionNotFoundError(f"{repo_id}: nothing synced yet in {self.root}")
        path = self.layout.version(repo_id, version_id)
        if not self.materialized(repo_id, version_id) or not self.layout.record(
            repo_id, version_id
        ).exists():
            self.get(repo_id, version_id)  # rebuilds the tree, or raises with the reason
        return path

    def all_records(self, repo_id: str) -> list[VersionRecord]:
        """Every record of a repository, present or evicted, newest first."""
        return self.records.all(repo_id)

    def present_versions(self, repo_id: str) -> list[Version]:
        return [r.version for r in self.all_records(repo_id) if r.present]

    def versions(self, repo_id: str) -> list[VersionEntry]:
        current = self.current_id(repo_id)
        pins = self.pins(repo_id)
        return [
            VersionEntry(
                r.version,
                r.present,
                r.version.version_id == current,
                tuple(pins.get(r.version.version_id, ())),
                materialized=r.present and self.materialized(repo_id, r.version.version_id),
            )
            for r in self.all_records(repo_id)
        ]

    # -- state ---------------------------------------------------------------------------

    def state(self, repo_id: str) -> dict[str, Any]:
        return self.records.state(repo_id)

    def update_state(self, repo_id: str, **changes: object) -> None:
        self.records.update_state(repo_id, **changes)

    # -- writing (the caller holds the repository lock) ------------------------------------

    def check_writable(self) -> None:
        """Raise CacheError, naming the folder, when the cache root cannot be written (a
        read-only file system, an immutable or foreign folder). A full disk passes: each
        repository's sync then fails on its own, and those needing no space still run."""
        folder = self.layout.internal / "locks"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return
            raise CacheError(
                f"cannot write the cache root {self.root}: {exc.strerror or exc}"
            ) from None

    def staging(self, repo_id: str) -> AbstractContextManager[Staging]:
        """A fresh staging folder, removed at the end; leftovers of interrupted syncs (and
        their unpublished trees) are removed first."""
        return self._publisher.staging(repo_id)

    @staticmethod
    def verify(planned: Sequence[PlannedFile], *, backend_version: str | None) -> VerifiedFiles:
        """Check downloads against their listing; the verified files, named. Writes nothing."""
        from dagfetch.cache.publish import verify

        return verify(planned, backend_version=backend_version)

    def publish(
        self,
        staging: Staging,
        verified: VerifiedFiles,
        *,
        source_url: str,
        fingerprint: str,
        refetchable: bool,
    ) -> Published:
        """Make a verified version visible (or reuse the complete one of the same id)."""
        return self._publisher.publish(
            staging,
            verified,
            source_url=source_url,
            fingerprint=fingerprint,
            refetchable=refetchable,
        )

    def switch_current(self, repo_id: str, version_id: str) -> None:
        self.records.switch_current(repo_id, version_id)

    def touch_record(self, repo_id: str, version: Version) -> None:
        """Refresh a record's change tokens after a sync found the same bytes under new ones."""
        self.records.touch(version)

    # -- pins ----------------------------------------------------------------------------

    def pin(self, repo_id: str, version_id: str, holder: str = "default") -> None:
        """Keep ``version_id`` through gc until every holder unpins it."""
        with self.repo_lock(repo_id):  # gc must not evict between the check and the pin
            self.get(repo_id, version_id)
            self._pins.add(repo_id, version_id, holder)

    def unpin(self, repo_id: str, version_id: str, holder: str = "default") -> bool:
        with self.repo_lock(repo_id):
            return self._pins.remove(repo_id, version_id, holder)

    def pins(self, repo_id: str) -> dict[str, list[str]]:
        return self._pins.of(repo_id)

    # -- damage ------------------------------------------------------------------------------

    def audit(self, repo_ids: Sequence[str] | None = None) -> VerifyReport:
        """Hash every object of the kept versions (of every or the named repositories) and
        report each bad file with its repository, version and path. Changes nothing."""
        return self._auditor().check(self.repo_ids() if repo_ids is None else repo_ids)

    def drop_bad(self, report: VerifyReport) -> None:
        """Remove what :meth:`audit` found bad (objects, and the trees holding them)."""
        self._auditor().drop_bad(report)

    def evict(self, repo_id: str, version_id: str) -> None:
        """Evict one version now (its record stays, flagged); only the remote brings it back."""
        with self.repo_lock(repo_id):
            found = self.record(repo_id, check_version_id(version_id))
            if found is not None and found.present:
                self._collector().evict(repo_id, found.version)

    def _auditor(self) -> Auditor:
        from dagfetch.cache.audit import Auditor

        return Auditor(self.layout, self.objects, self.records, self.locks)

    def _collector(self) -> Collector:
        from dagfetch.cache.gc import Collector

        return Collector(self.layout, self.objects, self.records, self._pins, self.locks)

    # -- garbage collection -----------------------------------------------------------------

    def gc(
        self,
        keep_versions: Mapping[str, int] | None = None,
        *,
        default_keep: int = 5,
        dry_run: bool = False,
        grace_seconds: float | None = None,
    ) -> GcReport:
        """Evict versions that are not current, not among each repository's newest
        ``keep_versions`` and not pinned; remove the trees of kept versions nobody is likely
        to be reading (not current, not pinned, retired more than ``grace_seconds`` ago,
        by default :data:`~dagfetch.cache.gc.DEFAULT_TREE_GRACE`); then remove contents no
        kept version uses."""
        from dagfetch.cache.gc import DEFAULT_TREE_GRACE

        if grace_seconds is None:
            grace_seconds = DEFAULT_TREE_GRACE
        return self._collector().collect(
            keep_versions or {},
            default_keep=default_keep,
            dry_run=dry_run,
            grace_seconds=grace_seconds,
        )


def _tree_matches(tree: Path, version: Version) -> bool:
    """Whether an unmarked tree holds every file of its record, each of the recorded size
    (a tree a killed 0.1.0 gc half deleted misses some)."""
    for f in version.files:
        try:
            st = os.lstat(tree / f.path)
        except OSError:
            return False
        if f.kind == "file" and st.st_size != f.size:
            return False
    return True
