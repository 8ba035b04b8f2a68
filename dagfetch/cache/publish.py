"""From downloaded files to a published version, in two steps with the caller's policy between.

1. :func:`verify` hashes each download (a file in staging, or bytes held in memory) and
   checks it against what the listing promised (its size, the store's digest where it gives
   one) and checks that each symlink stays inside the version. It writes nothing and returns
   the verified file list, named by :func:`version_id_for`.
2. :meth:`Publisher.publish` links the new contents into the object store (a download
   stays where the fetcher wrote it, in the staging tree; bytes held in memory are
   written), completes the tree with hard links to the contents the store held already,
   renames it into place and writes its record.

Between the two, :mod:`dagfetch.sync` decides whether that version may be published (an
immutable source must not change, a refetch must give the version asked for): the cache
stores, it does not judge.

Staging has one owner, :meth:`Publisher.staging`: it removes what interrupted syncs left,
hands out a fresh folder and removes it at the end, whatever happened. A killed sync leaves
only its staging folder and, at worst, a tree without a record (an orphan), both removed by the
next sync of the repository, with the temporary files of killed metadata writes and the trash;
a reader never sees a partial version (trees come and go by rename, see
:mod:`~dagfetch.cache.trees`).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

from dagfetch.cache.layout import CURRENT, CacheLayout, check_version_id
from dagfetch.cache.locks import CacheLocks
from dagfetch.cache.objects import READ_ONLY, ObjectStore, hash_bytes, hash_file
from dagfetch.cache.records import RecordStore, utcnow
from dagfetch.cache.trees import (
    build_tree,
    is_complete,
    make_read_only,
    mark_complete,
    move_into_place,
    remove_leftovers,
    retire_tree,
    scratch_folder,
)
from dagfetch.errors import CacheError, VerificationError
from dagfetch.models import CachedFile, RemoteFile, Version
from dagfetch.paths import safe_link_target
from dagfetch.redact import get_logger

log = get_logger(__name__)


@attrs.frozen
class PlannedFile:
    """One file of a version being built: already in the object store (``sha256``), just
    downloaded (``downloaded``, with ``sha256`` when the fetcher hashed what it wrote), or
    fetched into memory (``data``: many small files cost one write each, never a write and a
    read back); a symlink needs none. ``held``: the file as the current version holds it
    (same path, size and token; ``sha256`` is its), reused as it is when the listing says
    nothing else about it."""

    remote: RemoteFile
    sha256: str | None = None
    downloaded: str | Path | None = None
    data: bytes | None = None
    held: CachedFile | None = None


@attrs.frozen
class Download:
    """A verified download, waiting in staging to become an object: ``path`` is where the
    fetcher wrote it, normally ``file`` in the staging tree."""

    path: str | Path
    sha256: str
    size: int = -1
    file: str = ""
    read_only: bool = False  # written with the store's mode by the fetcher: no chmod needed


@attrs.frozen
class VerifiedFiles:
    """What :func:`verify` vouches for: the files of a version, ready to publish."""

    version_id: str
    backend_version: str | None
    files: tuple[CachedFile, ...]
    downloads: tuple[Download, ...] = ()
    #: verified contents held in memory, by sha256
    blobs: tuple[tuple[str, bytes], ...] = ()


@attrs.frozen
class Staging:
    """A sync's private folder, from :meth:`Publisher.staging`: the fetcher downloads into
    ``downloads``, which is also the ``tree`` publish completes around the downloads (links
    to the files the store holds) and renames out: a download is never moved, only linked
    into the object store."""

    repo_id: str
    path: Path

    @property
    def downloads(self) -> Path:
        return self.path / "download"

    @property
    def tree(self) -> Path:
        return self.downloads


@attrs.frozen
class Published:
    version: Version
    new: bool  # False: a complete version with the same id was present and is reused


def content_version_id(files: Iterable[CachedFile]) -> str:
    """Name a version by its content: equal trees get equal ids, different trees never do."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.kind}\0{f.sha256}\n".encode())
    return h.hexdigest()[:32]


def version_id_for(files: Iterable[CachedFile], backend_version: str | None) -> str:
    """The id a version is published under: the backend's own (a git commit), else a hash of
    its content."""
    return check_version_id(backend_version) if backend_version else content_version_id(files)


def verify(planned: Sequence[PlannedFile], *, backend_version: str | None) -> VerifiedFiles:
    """Hash and check every file of a version about to be published; nothing is written.
    Raises VerificationError naming the first file that is not what the listing said."""
    files: list[CachedFile] = []
    downloads: list[Download] = []
    blobs: dict[str, bytes] = {}
    for item in planned:
        remote = item.remote
        if remote.kind == "symlink":
            target = remote.target or ""
            safe_link_target(remote.path, target)
            sha, size = hashlib.sha256(target.encode()).hexdigest(), 0
        elif item.data is not None:
            sha, size = _check_bytes(remote, item.data), len(item.data)
            blobs[sha] = item.data
        elif item.downloaded is not None:
            sha, size, mode = _check_download(remote, item.downloaded, item.sha256)
            downloads.append(
                Download(item.downloaded, sha, size, remote.path, stat.S_IMODE(mode) == READ_ONLY)
            )
        elif item.sha256 is not None:
            held = item.held
            if (
                held is not None and held.sha256 == item.sha256 and held.path == remote.path
                and held.size == remote.size and held.token == remote.token
                and held.kind == remote.kind and held.extra == remote.extra
            ):
                files.append(held)  # equal to what would be built: shared, not rebuilt
                continue
            sha, size = item.sha256, remote.size
        else:
            raise CacheError(f"{remote.path}: neither downloaded nor known")
        files.append(
            CachedFile(
                remote.path, size, remote.token, sha, remote.kind, remote.target, dict(remote.extra)
            )
        )
    return VerifiedFiles(
        version_id_for(files, backend_version), backend_version, tuple(files), tuple(downloads),
        tuple(blobs.items()),
    )


def _check_bytes(remote: RemoteFile, data: bytes) -> str:
    """The sha256 of a download held in memory that matches its listing entry."""
    if 0 <= remote.size != len(data):
        raise VerificationError(
            f"{remote.path}: got {len(data)} bytes, the listing said {remote.size}"
        )
    return hash_bytes(data, remote.path, remote.digest)


def _check_download(
    remote: RemoteFile, downloaded: str | Path, written: str | None = None
) -> tuple[str, int, int]:
    """(sha256, size, mode) of a download that matches its listing entry. ``written``: the sha256
    the fetcher computed from the bytes it wrote (having checked them against the listing's
    digest): the file is not read back, only its size checked. A symlink is no download."""
    try:
        st = os.lstat(downloaded)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise VerificationError(f"{remote.path}: the fetcher did not write it")
    if written is not None:
        sha, size = written, st.st_size
    else:
        try:
            sha, size = hash_file(Path(downloaded), remote.digest)
        except VerificationError as exc:
            raise VerificationError(f"{remote.path}: {exc}") from None
    if 0 <= remote.size != size:
        raise VerificationError(
            f"{remote.path}: got {size} bytes, the listing said {remote.size}"
        )
    return sha, size, st.st_mode


@attrs.frozen
class Publisher:
    layout: CacheLayout
    objects: ObjectStore
    records: RecordStore
    locks: CacheLocks

    @contextmanager
    def staging(self, repo_id: str) -> Iterator[Staging]:
        """The one owner of staging folders. The caller holds the repository's lock, so
        whatever is in the repository's staging area (or an unpublished tree) was left by an
        interrupted sync: it is removed first. The fresh folder is removed on the way out."""
        self.layout.meta(repo_id).mkdir(parents=True, exist_ok=True)
        area = self.layout.staging(repo_id)
        for name in remove_leftovers(area):
            log.info("%s: removed leftovers of an interrupted sync: %s", repo_id, name)
        self._remove_orphans(repo_id)
        remove_leftovers(self.layout.trash(repo_id))
        self.records.remove_leftovers(repo_id)
        with scratch_folder(area) as folder:
            yield Staging(repo_id, folder)

    def _remove_orphans(self, repo_id: str) -> None:
        """Trees without a record (a sync killed between the rename and the record) and
        trees of evicted versions (gc killed between the flag and the removal)."""
        for entry in self.layout.repo(repo_id).iterdir():
            name = entry.name
            if name == ".meta" or name == CURRENT:
                continue
            if name.startswith(".current-"):  # a switch killed before its rename
                entry.unlink(missing_ok=True)
                continue
            found = self.records.get(repo_id, name) if _valid_version_id(name) else None
            if found is None or found.evicted:
                log.info("%s: removing unpublished tree %s", repo_id, name)
                marker = self.layout.tree_marker(repo_id, name) if found else None
                retire_tree(entry, marker, self.layout.trash(repo_id))

    def publish(
        self,
        staging: Staging,
        verified: VerifiedFiles,
        *,
        source_url: str,
        fingerprint: str,
        refetchable: bool,
    ) -> Published:
        """Build the verified version's tree from objects and make it visible: one rename,
        then its record. A complete version of the same id already present is reused."""
        repo_id, version_id = staging.repo_id, verified.version_id
        final = self.layout.version(repo_id, version_id)
        marker = self.layout.tree_marker(repo_id, version_id)
        with self.locks.objects():
            existing = self.records.get(repo_id, version_id)
            if existing is not None and existing.present and is_complete(marker, final):
                return Published(existing.version, new=False)
            tree = str(staging.tree)
            present: set[str] = set()
            for download in verified.downloads:
                if str(download.path) == f"{tree}/{download.file}":
                    # written where the tree needs it: linked into the store from there
                    if self.objects.adopt(str(download.path), download.sha256, download.size,
                                          read_only=download.read_only):
                        present.add(download.file)
                else:
                    self.objects.ingest(Path(download.path), download.sha256)
            made: set[str] = set()
            for sha256, data in verified.blobs:
                self.objects.write(sha256, data, made)
            build_tree(self.objects, tree, verified.files, present=present)
            make_read_only(staging.tree, verified.files)  # and nothing else the fetcher left
            # an orphan, the tree of an evicted version of this id, or an unmarked one
            retire_tree(final, marker, self.layout.trash(repo_id))
            move_into_place(staging.tree, final)
            mark_complete(marker)
            version = Version(
                repo_id=repo_id,
                version_id=version_id,
                path=str(final),
                source_url=source_url,
                fetched_at=utcnow(),
                files=verified.files,
                backend_version=verified.backend_version,
                fingerprint=fingerprint,
                refetchable=refetchable,
            )
            # a version that had a record before (evicted, or stored and now rebuilt) is
            # written in full: as a delta on the current version it could become the base of
            # its own base, a loop no reader could follow
            base = None if existing is not None else self.records.current_id(repo_id)
            self.records.write(version, delta_on=base)
        return Published(version, new=True)


def _valid_version_id(name: str) -> bool:
    try:
        check_version_id(name)
    except CacheError:
        return False
    return True
