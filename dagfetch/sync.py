"""One repository's sync: list, compare, download what changed, publish, switch ``current``.

This module decides *what* to fetch; the fetcher only moves bytes and the cache only stores
them. The order of the steps is what makes a sync cheap and safe:

1. one listing (``Fetcher.list``); every path passes :func:`dagfetch.paths.safe_relpath`;
2. same backend version or same fingerprint as ``current``: record the check, stop;
3. files whose change token matches a file of the current version are linked, not fetched;
4. the rest is downloaded into staging and verified (sizes, digests, symlink targets);
5. the version id the verified files give must pass this module's policy: a source declared
   immutable must not change, a refetch must give back exactly the version asked for;
6. the version is published by one rename (or the identical one already present is reused);
7. ``current`` switches; on any failure the previous version keeps serving.

A sync that reports failure never switched ``current``: what follows the switch is
bookkeeping, written best-effort. Every write on the error path may fail too (a full disk):
it is logged, and the sync's own error is what the caller gets.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

from dagfetch.cache.records import VersionRecord, utcnow
from dagfetch.cache.store import VersionCache
from dagfetch.errors import (
    CacheError,
    DagfetchError,
    FetchError,
    ImmutableSourceChanged,
    VerificationError,
    VersionUnavailableError,
)
from dagfetch.manifest import RepositorySpec
from dagfetch.models import CachedFile, Listing, RemoteFile, SyncResult, Version
from dagfetch.protocol import (
    HELD_CONTENTS,
    REMOTE_VERSION,
    Fetcher,
    VersionedFetcher,
    Written,
)
from dagfetch.redact import get_logger, mask, redact_url
from dagfetch.selection import select_files

if TYPE_CHECKING:  # publishing is imported when a sync builds a version; most find none
    from dagfetch.cache.publish import PlannedFile, Staging

log = get_logger(__name__)


class SyncObserver(Protocol):
    """Hooks for progress reporting; the CLI's progress bar is one."""

    def started(self, repo_id: str, files: int, nbytes: int) -> None: ...

    def file_done(self, repo_id: str, remote_file: RemoteFile) -> None: ...

    def finished(self, result: SyncResult) -> None: ...


def _fingerprint(files: Sequence[RemoteFile], backend_version: str | None) -> str:
    return Listing(tuple(files), backend_version).fingerprint()


@attrs.frozen
class _Built:
    """A version a sync built (or found already present), and what that cost."""

    version: Version
    downloaded: int
    downloaded_bytes: int
    reused: int


@attrs.define
class Syncer:
    cache: VersionCache

    def sync(
        self,
        spec: RepositorySpec,
        fetcher: Fetcher,
        *,
        observer: SyncObserver | None = None,
        full: bool = False,
    ) -> SyncResult:
        """Bring ``spec``'s repository up to date in the cache. Raises on failure, after
        recording the error; the previous version stays current. ``full`` builds the
        version even when the listing is unchanged (a repair after damage)."""
        with self.cache.repo_lock(spec.id):
            try:
                result = self._sync_locked(spec, fetcher, observer, full=full)
            except Exception as exc:
                error = _as_dagfetch_error(spec, exc)
                self._note(
                    spec.id,
                    last_check_at=utcnow().isoformat(),
                    last_error={"message": str(error), "at": utcnow().isoformat()},
                )
                if error is exc:
                    raise
                raise error from exc
        if observer is not None:
            observer.finished(result)
        return result

    def _sync_locked(
        self, spec: RepositorySpec, fetcher: Fetcher, observer: SyncObserver | None, *,
        full: bool = False,
    ) -> SyncResult:
        current = self._readable_current(spec.id)
        self._lend_held(fetcher, current)
        if not full and current is not None and current.backend_version is not None:
            seen = _remote_version(fetcher)
            if seen is not None and seen == current.backend_version:
                # the backend named its version without a listing: the current one
                return self._unchanged(spec.id, current.version_id)
        with self.cache.staging(spec.id) as staging:
            listing = fetcher.list()
            files = select_files(listing, spec)
            fingerprint = _fingerprint(files, listing.version_id)
            if not full and current is not None and (
                (listing.version_id is not None and listing.version_id == current.backend_version)
                or fingerprint == current.fingerprint
            ):
                return self._unchanged(spec.id, current.version_id)
            built = self._build(
                spec,
                fetcher,
                files,
                staging,
                listing.version_id,
                fingerprint,
                observer,
                current=current,
                must_equal=current.version_id if (spec.immutable and current) else None,
            )
        version = built.version
        previous = current.version_id if current else None
        self.cache.switch_current(spec.id, version.version_id)
        self._ok(spec.id, version.version_id, changed=version.version_id != previous)
        log.info(
            "%s: now at %s (%d downloaded, %d reused)",
            spec.id,
            version.version_id,
            built.downloaded,
            built.reused,
        )
        return SyncResult(
            spec.id,
            version.version_id,
            version.version_id != previous,
            built.downloaded,
            built.downloaded_bytes,
            built.reused,
            previous,
        )

    def _unchanged(self, repo_id: str, version_id: str) -> SyncResult:
        self._ok(repo_id, version_id, changed=False)
        return SyncResult(repo_id, version_id, changed=False, previous_version_id=version_id)

    def _readable_current(self, repo_id: str) -> Version | None:
        """The current version's record, or None when ``current`` names a version whose
        record is gone, evicted or unreadable (quarantined): the sync then rebuilds it from
        the remote. Its tree is not needed (nor rebuilt) to compare listings."""
        version_id = self.cache.current_id(repo_id)
        if version_id is None:
            return None
        try:
            found = self.cache.record(repo_id, version_id)
        except CacheError:  # not even a version id
            found = None
        if found is None or found.evicted:
            log.warning("%s: current names %r, which has no usable record; syncing it again "
                        "from the remote", repo_id, version_id)
            return None
        return found.version

    def _lend_held(self, fetcher: Fetcher, current: Version | None) -> None:
        """Hand a fetcher that takes one (:data:`~dagfetch.protocol.HELD_CONTENTS`) the
        reader of the current version's files by token: a delta the remote sends on one of
        them is then rebuilt here, without asking the remote for its base."""
        take = getattr(fetcher, HELD_CONTENTS, None)
        if callable(take):
            take(self.cache.objects.by_token(current))

    def _note(self, repo_id: str, **changes: object) -> None:
        """Record state best-effort: on the error path and after the switch, failing to
        write it (a full disk, a read-only cache) must not hide what the sync did."""
        try:
            self.cache.update_state(repo_id, **changes)
        except (OSError, DagfetchError) as exc:
            log.warning("%s: could not record the sync's state: %s", repo_id, mask(str(exc)))

    def _ok(self, repo_id: str, version_id: str, *, changed: bool) -> None:
        now = utcnow().isoformat()
        changes: dict[str, object] = {
            "current": version_id,
            "last_check_at": now,
            "last_success_at": now,
            "last_error": None,
        }
        if changed:
            changes["last_change_at"] = now
        self._note(repo_id, **changes)

    def _build(
        self,
        spec: RepositorySpec,
        fetcher: Fetcher,
        files: Sequence[RemoteFile],
        staging: Staging,
        backend_version: str | None,
        fingerprint: str,
        observer: SyncObserver | None,
        *,
        current: Version | None,
        must_equal: str | None = None,
        expected_version: str | None = None,
    ) -> _Built:
        """Download what the current version cannot lend, verify, check, publish."""
        from dagfetch.cache.publish import PlannedFile

        known = _known_contents(current) if fetcher.capabilities.incremental else {}
        has = self.cache.objects.has
        # the fetcher writes each download where the version's tree needs it: the tree is
        # completed around the downloads (publish), never moved there file by file
        tree = str(staging.downloads)
        slots: list[PlannedFile | None] = []  # None: a download, planned once it is written
        to_download: list[RemoteFile] = []
        for f in files:
            if f.kind == "symlink":
                slots.append(PlannedFile(f))
                continue
            held = known.get((f.path, f.size, f.token))
            if held is not None and has(held.sha256, f.size):
                slots.append(PlannedFile(f, sha256=held.sha256, held=held))
            else:
                to_download.append(f)
                slots.append(None)
        nbytes = sum(max(f.size, 0) for f in to_download)
        if observer is not None:
            observer.started(spec.id, len(to_download), nbytes)
        staging.downloads.mkdir(parents=True, exist_ok=True)
        written: Written | None = None
        if to_download:
            done = (lambda f: observer.file_done(spec.id, f)) if observer is not None else None
            # hashes the fetcher computed from the bytes it wrote, when it gives them
            written = fetcher.fetch(to_download, staging.downloads, done)
        got = iter(to_download)
        planned: list[PlannedFile] = []
        for slot in slots:
            if slot is None:  # the next download, where the fetcher wrote it
                f = next(got)
                slot = PlannedFile(f, sha256=written.get(f.path) if written else None,
                                   downloaded=f"{tree}/{f.path}")
            planned.append(slot)
        verified = self.cache.verify(planned, backend_version=backend_version)
        _check_version_id(
            spec, verified.version_id, must_equal=must_equal, expected_version=expected_version
        )
        published = self.cache.publish(
            staging,
            verified,
            source_url=redact_url(spec.url),
            fingerprint=fingerprint,
            refetchable=fetcher.capabilities.versioned or fetcher.capabilities.named_versions,
        )
        version = published.version
        if not published.new and version.fingerprint != fingerprint and expected_version is None:
            # same bytes under new change tokens (a touched file): remember the new tokens so
            # the next check is a no-change one
            remote = {p.remote.path: p.remote for p in planned}
            version = attrs.evolve(
                version,
                fingerprint=fingerprint,
                files=tuple(
                    attrs.evolve(c, token=remote[c.path].token, extra=dict(remote[c.path].extra))
                    for c in version.files
                ),
            )
            self.cache.touch_record(spec.id, version)
        return _Built(version, len(to_download), nbytes, len(files) - len(to_download))

    def materialize(
        self,
        spec: RepositorySpec,
        fetcher: Fetcher,
        version_id: str,
        *,
        make_current: bool = False,
    ) -> Version:
        """Make ``version_id`` present again (it was evicted, or another node chose it).

        Uses the version's record when the backend can fetch old content exactly, else asks
        a backend with named versions to list it. Fails with VersionUnavailableError when
        neither is possible: the remote keeps no history."""
        with self.cache.repo_lock(spec.id):
            try:
                found = self.cache.record(spec.id, version_id)
                if found is not None and found.present:
                    version = self.cache.get(spec.id, version_id)  # rebuilt locally if stored
                else:
                    version = self._refetch(spec, fetcher, version_id, found)
            except Exception as exc:
                error = _as_dagfetch_error(spec, exc)
                if error is exc:
                    raise
                raise error from exc
            if make_current:
                self.cache.switch_current(spec.id, version.version_id)
                self._ok(spec.id, version.version_id, changed=True)
            return version

    def _refetch(
        self,
        spec: RepositorySpec,
        fetcher: Fetcher,
        version_id: str,
        found: VersionRecord | None,
    ) -> Version:
        caps = fetcher.capabilities
        current = self._readable_current(spec.id)
        self._lend_held(fetcher, current)
        backend_version: str | None
        # a backend that lists any version by id (git) is asked for it; a versioned store
        # (S3 object versions) gets the recorded files, whose extra names each object version
        if caps.named_versions and isinstance(fetcher, VersionedFetcher):
            wanted = found.version.backend_version if found is not None else None
            listing = fetcher.list_version(wanted or version_id)
            files = select_files(listing, spec)
            backend_version = listing.version_id
        elif found is not None and caps.versioned:
            files = [f.as_remote() for f in found.version.files]
            backend_version = found.version.backend_version
        else:
            why = "it was evicted and " if found is not None else "it is not in the cache and "
            raise VersionUnavailableError(
                f"{spec.id}: version {version_id} cannot be fetched: {why}"
                f"{redact_url(spec.url)} keeps no history"
            )
        with self.cache.staging(spec.id) as staging:
            built = self._build(
                spec,
                fetcher,
                files,
                staging,
                backend_version,
                _fingerprint(files, backend_version),
                None,
                current=current,
                expected_version=version_id,
            )
        return built.version


def _check_version_id(
    spec: RepositorySpec,
    version_id: str,
    *,
    must_equal: str | None,
    expected_version: str | None,
) -> None:
    """The sync's policy on what it fetched, checked before anything is published."""
    if must_equal is not None and version_id != must_equal:
        raise ImmutableSourceChanged(
            f"{spec.id}: {redact_url(spec.url)} is declared immutable but its content changed "
            f"(was {must_equal}, now {version_id}); publish a new URL instead"
        )
    if expected_version is not None and version_id != expected_version:
        raise VerificationError(
            f"{spec.id}: the fetched content of {expected_version} hashes to {version_id}; "
            "the remote no longer holds that version exactly"
        )


def _known_contents(current: Version | None) -> dict[tuple[str, int, str], CachedFile]:
    """(path, size, token) -> the current version's file: what an incremental sync need
    not fetch. (Reading every kept version here made each sync cost O(versions x files); a
    file reverting to an older state is simply fetched again.)"""
    if current is None:
        return {}
    return {(f.path, f.size, f.token): f for f in current.files if f.kind == "file"}


# errors of the local disk, not of the remote
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _as_dagfetch_error(spec: RepositorySpec, exc: Exception) -> DagfetchError:
    if isinstance(exc, DagfetchError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS and exc.filename:
        return CacheError(f"{spec.id}: cannot write {exc.filename}: {exc.strerror}")
    if isinstance(exc, OSError):
        return FetchError(f"{spec.id}: {mask(str(exc))}")
    return FetchError(f"{spec.id}: unexpected {type(exc).__name__}: {mask(str(exc))}")


def _remote_version(fetcher: Fetcher) -> str | None:
    """The fetcher's version before any listing, when it offers one (``remote_version``)."""
    ask = getattr(fetcher, REMOTE_VERSION, None)
    return ask() if callable(ask) else None
