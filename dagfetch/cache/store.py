"""Publishing versions atomically, the ``current`` pointer, pins and garbage collection.

The rules that make the cache safe to share between processes on one machine:

- A version is built in ``.dagfetch/staging`` and appears under ``<repo>/<version_id>`` by one
  ``rename``; its record is written after, and a tree without a record is an orphan the next
  sync removes. So a reader never sees a partial version, and a killed sync leaves nothing.
- ``current`` is a symlink replaced by ``rename``: a reader gets the old or the new version.
- Syncs and gc of one repository take its lock (``filelock``: an OS lock, released by the
  kernel when a process dies, so a crash never leaves a stale lock). Adding objects and
  sweeping them take the objects lock, always after a repository lock.
- Version trees are read-only. A kept version is *materialized* (its tree exists) or
  *stored* (its record and contents are kept, and its tree is rebuilt from local contents on
  first use, in milliseconds, with no network). gc keeps trees for the current version, pinned
  versions and versions that stopped being current less than a grace period ago; it evicts
  (drops record contents too) versions beyond each repository's newest ``keep_versions``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import filelock

from dagfetch.cache.layout import CURRENT, CacheLayout, check_version_id, default_cache_root
from dagfetch.cache.objects import ObjectStore, hash_file
from dagfetch.cache.records import (
    MAX_CHAIN,
    delta_is_worth_it,
    files_from_json,
    read_json,
    utcnow,
    version_from_json,
    version_to_json,
    write_json_atomic,
)
from dagfetch.errors import (
    CacheError,
    ImmutableSourceChanged,
    VerificationError,
    VersionNotFoundError,
)
from dagfetch.models import CachedFile, RemoteFile, Version
from dagfetch.paths import safe_link_target
from dagfetch.redact import get_logger

log = get_logger(__name__)

DEFAULT_LOCK_TIMEOUT = 600.0
DEFAULT_TREE_GRACE = 600.0  # seconds a retired version keeps its tree for readers still in it


@attrs.frozen
class PlannedFile:
    """One file of a version being built: already in the object store (``sha256``) or just
    downloaded (``downloaded``)."""

    remote: RemoteFile
    sha256: str | None = None
    downloaded: Path | None = None


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


@attrs.frozen
class GcReport:
    evicted: tuple[tuple[str, str], ...]
    objects_removed: int
    bytes_freed: int
    dry_run: bool = False
    stored: tuple[tuple[str, str], ...] = ()  # trees removed; contents kept, rebuilt on use


def content_version_id(files: Iterable[CachedFile]) -> str:
    """Name a version by its content: equal trees get equal ids, different trees never do."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.kind}\0{f.sha256}\n".encode())
    return h.hexdigest()[:32]


def _make_writable(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)  # noqa: S103 - our own tree, made writable to delete it
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o755)  # noqa: S103 - as above


def remove_tree(path: Path) -> None:
    """Remove a (possibly read-only) tree, or a symlink, if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path)


def _make_read_only(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o555)  # noqa: S103 - read-only for everyone is the point


class VersionCache:
    """The cache root: versions of every repository, their records, pins and objects."""

    def __init__(
        self, root: str | Path | None = None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ):
        self.layout = CacheLayout(Path(root) if root is not None else default_cache_root())
        self.objects = ObjectStore(self.layout)
        self.lock_timeout = lock_timeout
        self._files_memo: dict[tuple[str, str], tuple[CachedFile, ...]] = {}

    @property
    def root(self) -> Path:
        return self.layout.root

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self, name: str, timeout: float | None) -> Iterator[None]:
        path = self.layout.lock(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(
            str(path), timeout=self.lock_timeout if timeout is None else timeout
        )
        try:
            with lock:
                yield
        except filelock.Timeout:
            raise CacheError(
                f"timed out waiting for the lock {path} (another sync or gc is running)"
            ) from None

    def repo_lock(self, repo_id: str, timeout: float | None = None) -> AbstractContextManager[None]:
        return self._locked(f"repo-{repo_id}", timeout)

    def objects_lock(self) -> AbstractContextManager[None]:
        return self._locked("objects", None)

    # -- reading -------------------------------------------------------------------------

    def repo_ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if not p.name.startswith(".") and (p / ".meta").is_dir()
        )

    def current_id(self, repo_id: str) -> str | None:
        try:
            return os.readlink(self.layout.current_link(repo_id))
        except (FileNotFoundError, OSError):
            return None

    def record(self, repo_id: str, version_id: str) -> tuple[Version, bool] | None:
        """(version, evicted) from the record, or None if there is no record."""
        data = self._raw_record(repo_id, version_id)
        if data is None:
            return None
        files = self._files(repo_id, version_id, data)
        return version_from_json(self.layout, data, files), bool(data.get("evicted"))

    def _raw_record(self, repo_id: str, version_id: str) -> dict[str, Any] | None:
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
        """A record's full file list, following its delta chain (memoized: records of
        published versions never change their files)."""
        key = (repo_id, version_id)
        if key not in self._files_memo:
            base_files = None
            if "base" in data:
                base_id = data["base"]
                base = self._raw_record(repo_id, base_id)
                if base is None or base_id in visiting or base_id == version_id:
                    why = "lost its base" if base is None else "is in a loop of bases through"
                    raise CacheError(
                        f"{repo_id}: record of {version_id} {why} {base_id}; remove "
                        f"{self.layout.records(repo_id)} and sync again"
                    )
                base_files = self._files(repo_id, base_id, base, visiting | {version_id})
            self._files_memo[key] = files_from_json(data, base_files)
        return self._files_memo[key]

    def get(self, repo_id: str, version_id: str) -> Version:
        """A kept version, its tree rebuilt from local contents if gc stored it; or
        VersionNotFoundError saying why not."""
        found = self.record(repo_id, check_version_id(version_id))
        if found is None:
            raise VersionNotFoundError(f"{repo_id}: no version {version_id!r} in {self.root}")
        version, evicted = found
        if evicted:
            how = (
                "fetch it again with `dagfetch path` / Workspace.path"
                if version.refetchable
                else "the remote keeps no history, so it cannot be re-fetched"
            )
            raise VersionNotFoundError(f"{repo_id}: version {version_id} was evicted; {how}")
        if not os.path.isdir(version.path):
            self._restore(repo_id, version)
        return version

    def _restore(self, repo_id: str, version: Version) -> None:
        """Rebuild a stored version's tree from local contents. Takes only the objects lock
        (a reader must not wait for a long sync); a racing restore of the same version is
        harmless, the first rename wins."""
        hashed = [
            (PlannedFile(f.as_remote(), sha256=f.sha256), f.sha256, f.size) for f in version.files
        ]
        scratch = self.layout.internal / "restore" / uuid.uuid4().hex
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.objects_lock():
                # gc evicts under this lock too: the record read before may be stale
                data = self._raw_record(repo_id, version.version_id)
                if data is None or data.get("evicted"):
                    raise VersionNotFoundError(
                        f"{repo_id}: version {version.version_id} was evicted meanwhile"
                    )
                self._build_tree(str(scratch), hashed)
                _make_read_only(scratch)
                try:
                    os.rename(scratch, version.path)
                except OSError:
                    if not os.path.isdir(version.path):
                        raise
                    return
                os.chmod(version.path, 0o555)  # noqa: S103 - read-only version tree
            log.info(
                "%s: rebuilt stored version %s from local contents", repo_id, version.version_id
            )
        finally:
            remove_tree(scratch)

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
        if not path.is_dir() or not self.layout.record(repo_id, version_id).exists():
            self.get(repo_id, version_id)  # raises with the reason
        return path

    def all_records(self, repo_id: str) -> list[tuple[Version, bool]]:
        folder = self.layout.records(repo_id)
        if not folder.exists():
            return []
        out = []
        for p in folder.glob("*.json"):
            found = self.record(repo_id, p.stem)
            if found is not None:
                out.append(found)
        out.sort(key=lambda item: item[0].fetched_at, reverse=True)
        return out

    def present_versions(self, repo_id: str) -> list[Version]:
        return [v for v, evicted in self.all_records(repo_id) if not evicted]

    def versions(self, repo_id: str) -> list[VersionEntry]:
        current = self.current_id(repo_id)
        pins = self.pins(repo_id)
        return [
            VersionEntry(
                v,
                not evicted,
                v.version_id == current,
                tuple(pins.get(v.version_id, ())),
                materialized=not evicted and os.path.isdir(v.path),
            )
            for v, evicted in self.all_records(repo_id)
        ]

    # -- state ---------------------------------------------------------------------------

    def state(self, repo_id: str) -> dict[str, Any]:
        path = self.layout.state(repo_id)
        data = read_json(path) if path.exists() else {}
        return data if isinstance(data, dict) else {}

    def update_state(self, repo_id: str, **changes: object) -> None:
        state = self.state(repo_id)
        state.update(changes)
        write_json_atomic(self.layout.state(repo_id), state)

    # -- writing (the caller holds the repository lock) ------------------------------------

    def prepare(self, repo_id: str) -> Path:
        """Clean what interrupted syncs left behind and return a fresh staging folder."""
        self.layout.meta(repo_id).mkdir(parents=True, exist_ok=True)
        staging_root = self.layout.staging(repo_id)
        if staging_root.exists():
            for leftover in staging_root.iterdir():
                log.info(
                    "%s: removing leftovers of an interrupted sync: %s", repo_id, leftover.name
                )
                remove_tree(leftover)
        self._remove_orphans(repo_id)
        staging = staging_root / uuid.uuid4().hex
        staging.mkdir(parents=True)
        return staging

    def _remove_orphans(self, repo_id: str) -> None:
        repo = self.layout.repo(repo_id)
        for entry in repo.iterdir():
            name = entry.name
            if name == ".meta" or name == CURRENT:
                continue
            if name.startswith(".current-"):
                entry.unlink(missing_ok=True)
                continue
            found = self.record(repo_id, name) if check_version_id_ok(name) else None
            if found is None or found[1]:
                log.info("%s: removing unpublished tree %s", repo_id, name)
                remove_tree(entry)

    def publish(
        self,
        repo_id: str,
        staging: Path,
        planned: Sequence[PlannedFile],
        *,
        source_url: str,
        backend_version: str | None,
        fingerprint: str,
        refetchable: bool,
        must_equal: str | None = None,
        expected_version: str | None = None,
    ) -> tuple[Version, bool]:
        """Verify downloads, build the tree from objects, and publish it. Returns the version
        and whether it is new (an identical version may already be present)."""
        hashed: list[tuple[PlannedFile, str, int]] = []
        for item in planned:
            if item.remote.kind == "symlink":
                target = item.remote.target or ""
                safe_link_target(item.remote.path, target)
                hashed.append((item, hashlib.sha256(target.encode()).hexdigest(), 0))
            elif item.downloaded is not None:
                if not item.downloaded.is_file():
                    raise VerificationError(f"{item.remote.path}: the fetcher did not write it")
                try:
                    sha, size = hash_file(item.downloaded, item.remote.digest)
                except VerificationError as exc:
                    raise VerificationError(f"{item.remote.path}: {exc}") from None
                if 0 <= item.remote.size != size:
                    raise VerificationError(
                        f"{item.remote.path}: got {size} bytes, the listing said {item.remote.size}"
                    )
                hashed.append((item, sha, size))
            elif item.sha256 is not None:
                hashed.append((item, item.sha256, item.remote.size))
            else:
                raise CacheError(f"{item.remote.path}: neither downloaded nor known")

        files = tuple(
            CachedFile(
                p.remote.path,
                size,
                p.remote.token,
                sha,
                p.remote.kind,
                p.remote.target,
                dict(p.remote.extra),
            )
            for p, sha, size in hashed
        )
        version_id = (
            check_version_id(backend_version) if backend_version else content_version_id(files)
        )
        if must_equal is not None and version_id != must_equal:
            raise ImmutableSourceChanged(
                f"{repo_id}: {source_url} is declared immutable but its content changed "
                f"(was {must_equal}, now {version_id}); publish a new URL instead"
            )
        if expected_version is not None and version_id != expected_version:
            raise VerificationError(
                f"{repo_id}: the fetched content of {expected_version} hashes to {version_id}; "
                "the remote no longer holds that version exactly"
            )
        final = self.layout.version(repo_id, version_id)

        with self.objects_lock():
            existing = self.record(repo_id, version_id)
            if existing is not None and not existing[1] and final.is_dir():
                remove_tree(staging)
                return existing[0], False
            tree = staging / "tree"
            self._build_tree(str(tree), hashed)
            _make_read_only(tree)
            remove_tree(final)  # an orphan or evicted tree of the same id
            os.replace(tree, final)
            os.chmod(final, 0o555)  # noqa: S103 - read-only version tree
            version = Version(
                repo_id=repo_id,
                version_id=version_id,
                path=str(final),
                source_url=source_url,
                fetched_at=utcnow(),
                files=files,
                backend_version=backend_version,
                fingerprint=fingerprint,
                refetchable=refetchable,
            )
            # a version that had a record before (evicted, or stored and now rebuilt) is
            # written in full: as a delta on the current version it could become the base of
            # its own base, a loop no reader could follow
            record = (
                version_to_json(version)
                if existing is not None
                else self._record_json(repo_id, version)
            )
            write_json_atomic(self.layout.record(repo_id, version_id), record)
            self._files_memo.pop((repo_id, version_id), None)
        remove_tree(staging)
        return version, True

    def _build_tree(self, tree: str, hashed: Sequence[tuple[PlannedFile, str, int]]) -> None:
        # the hot loop of every sync (one pass per file of the version): plain strings and
        # one mkdir per folder keep it close to `cp -al`
        made = {tree}
        os.mkdir(tree)
        for item, sha, _ in hashed:
            dest = os.path.join(tree, item.remote.path)
            parent = os.path.dirname(dest)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            if item.remote.kind == "symlink":
                os.symlink(item.remote.target or "", dest)
                continue
            if item.downloaded is not None:
                self.objects.ingest(item.downloaded, sha)
            try:
                self.objects.link_into(sha, dest)
            except FileNotFoundError:
                raise CacheError(
                    f"{item.remote.path}: object {sha} vanished from the cache"
                ) from None

    def _record_json(self, repo_id: str, version: Version) -> dict[str, Any]:
        """Store ``version`` as a delta on the current version while the chain is short and
        the delta small; else in full."""
        current_id = self.current_id(repo_id)
        base_data = self._raw_record(repo_id, current_id) if current_id else None
        if current_id and base_data is not None and base_data.get("depth", 0) < MAX_CHAIN:
            base = self.record(repo_id, current_id)
            if base is not None and delta_is_worth_it(version, base[0]):
                return version_to_json(version, base=base[0], depth=base_data.get("depth", 0) + 1)
        return version_to_json(version)

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

    def touch_record(self, repo_id: str, version: Version) -> None:
        """Refresh a record's fingerprint after a no-change sync whose tokens moved."""
        # a full list: versions stored as deltas on this one then see the new tokens, which
        # name the same bytes (a touch never changes content)
        write_json_atomic(self.layout.record(repo_id, version.version_id), version_to_json(version))
        self._files_memo = {k: v for k, v in self._files_memo.items() if k[0] != repo_id}

    # -- pins ----------------------------------------------------------------------------

    def pin(self, repo_id: str, version_id: str, holder: str = "default") -> None:
        """Keep ``version_id`` through gc until every holder unpins it."""
        with self.repo_lock(repo_id):  # gc must not evict between the check and the pin
            self.get(repo_id, version_id)
            folder = self.layout.pins(repo_id, version_id)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / _holder_name(holder)).touch()

    def unpin(self, repo_id: str, version_id: str, holder: str = "default") -> bool:
        folder = self.layout.pins(repo_id, version_id)
        marker = folder / _holder_name(holder)
        with self.repo_lock(repo_id):
            if not marker.exists():
                return False
            marker.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
            return True

    def pins(self, repo_id: str) -> dict[str, list[str]]:
        base = self.layout.pins(repo_id)
        if not base.exists():
            return {}
        return {d.name: sorted(h.name for h in d.iterdir()) for d in base.iterdir() if d.is_dir()}

    # -- garbage collection -----------------------------------------------------------------

    def gc(
        self,
        keep_versions: Mapping[str, int] | None = None,
        *,
        default_keep: int = 5,
        dry_run: bool = False,
        grace_seconds: float = DEFAULT_TREE_GRACE,
    ) -> GcReport:
        """Evict versions that are not current, not among each repository's newest
        ``keep_versions`` and not pinned; remove the trees of kept versions nobody is likely
        to be reading (not current, not pinned, retired more than ``grace_seconds`` ago);
        then remove contents no kept version uses."""
        keep_versions = keep_versions or {}
        evicted: list[tuple[str, str]] = []
        stored: list[tuple[str, str]] = []
        now = time.time()
        for repo_id in self.repo_ids():
            keep = keep_versions.get(repo_id, default_keep)
            with self.repo_lock(repo_id):
                current = self.current_id(repo_id)
                pinned = set(self.pins(repo_id))
                retired = self.state(repo_id).get("retired") or {}
                present = self.present_versions(repo_id)  # newest first
                kept = {v.version_id for v in present[:keep]} | pinned | {current}
                for version in present:
                    vid = version.version_id
                    if vid not in kept:
                        evicted.append((repo_id, vid))
                        if not dry_run:
                            self._evict(repo_id, version)
                    elif (
                        vid != current
                        and vid not in pinned
                        and os.path.isdir(version.path)
                        and now - self._last_use(version, retired) >= grace_seconds
                    ):
                        stored.append((repo_id, vid))
                        if not dry_run:
                            remove_tree(Path(version.path))
        removed = freed = 0
        with self.objects_lock():
            used: set[str] = set()
            for repo_id in self.repo_ids():
                for version in self.present_versions(repo_id):
                    if dry_run and (repo_id, version.version_id) in evicted:
                        continue
                    used.update(f.sha256 for f in version.files if f.kind == "file")
            for sha in self.objects.all_objects():
                if sha not in used:
                    removed += 1
                    if dry_run:
                        freed += self.layout.object_path(sha).stat().st_size
                    else:
                        freed += self.objects.remove(sha)
            stale = self.layout.internal / "restore"
            if stale.exists() and not dry_run:
                for leftover in stale.iterdir():  # restores that died half-way
                    remove_tree(leftover)
        return GcReport(tuple(evicted), removed, freed, dry_run, tuple(stored))

    @staticmethod
    def _last_use(version: Version, retired: Mapping[str, float]) -> float:
        """When readers last had reason to enter a version's tree: it stopped being current,
        or its tree was (re)built, for instance restored for a reader."""
        try:
            built = os.stat(version.path).st_mtime
        except FileNotFoundError:
            built = 0.0
        return max(float(retired.get(version.version_id, 0)), built)

    def _evict(self, repo_id: str, version: Version) -> None:
        log.info("%s: evicting version %s", repo_id, version.version_id)
        record = self.layout.record(repo_id, version.version_id)
        # mark first: a crash between the two steps leaves an evicted record and an orphan
        # tree, which the next sync removes
        with self.objects_lock():  # a reader's restore of this version must not interleave
            data = self._raw_record(repo_id, version.version_id) or {}
            write_json_atomic(record, {**data, "evicted": True})
            remove_tree(Path(version.path))


def check_version_id_ok(name: str) -> bool:
    try:
        check_version_id(name)
    except CacheError:
        return False
    return True


def _holder_name(holder: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in holder)
    if not safe or safe.startswith("."):
        raise CacheError(f"{holder!r} is not a usable pin holder name")
    return safe
