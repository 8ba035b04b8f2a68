"""A follower's side: fetch one version from the team cache into the local cache.

Requests, whatever the number of files: the pointer (only when no version is given), the
version document, then the packs: a cold cache GETs the snapshot whole; a warm one ranged-GETs
what it lacks, neighbouring ranges merged, so one changed file is one ranged GET. Where a
snapshot is gone (dropped after two newer uploads, or by gc), the delta packs serve the same
contents, one ranged GET per stretch of a pack.

Every content is checked against the sha256 and size the document's record gives before
anything is published, and the files' ids against the version id asked for; a pack altered in
the team cache is refused (:class:`~dagfetch.errors.VerificationError` naming the file and
the pack), the local cache keeps serving what it served.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import attrs

from dagfetch.cache.publish import PlannedFile
from dagfetch.cache.records import utcnow
from dagfetch.cache.store import VersionCache
from dagfetch.errors import RemoteNotFoundError, VerificationError, VersionUnavailableError
from dagfetch.models import RemoteFile, Version
from dagfetch.redact import get_logger, redact_url
from dagfetch.team.documents import Location, VersionDocument, pack_key, unique_contents
from dagfetch.team.objects import TeamObjects
from dagfetch.team.upload import read_document

log = get_logger(__name__)

#: ranges of one pack closer than this are fetched as one (the bytes between are dropped)
MERGE_GAP = 256 * 1024
#: a warm reader lacking more than this share of a snapshot GETs it whole
WHOLE_SHARE = 0.5


@attrs.frozen
class Fetched:
    version: Version
    downloaded: int
    downloaded_bytes: int
    requests: int  # to the team cache, for this version (the pointer not counted)


@attrs.frozen
class _Span:
    pack: str
    start: int
    end: int
    wanted: tuple[tuple[str, Location], ...]


def plan_spans(wanted: dict[str, Location], *, whole: dict[str, int] | None = None) -> list[_Span]:
    """Group the ranges to read into as few GETs as sensible: per pack, ranges closer than
    :data:`MERGE_GAP` merge. ``whole`` maps pack -> size for packs to read entirely."""
    by_pack: dict[str, list[tuple[str, Location]]] = {}
    for sha, loc in wanted.items():
        by_pack.setdefault(loc.pack, []).append((sha, loc))
    spans: list[_Span] = []
    for pack, items in sorted(by_pack.items()):
        items.sort(key=lambda item: item[1].offset)
        if whole and pack in whole:
            spans.append(_Span(pack, 0, whole[pack], tuple(items)))
            continue
        group = [items[0]]
        start, end = items[0][1].offset, items[0][1].offset + items[0][1].length
        for item in items[1:]:
            loc = item[1]
            if loc.offset - end <= MERGE_GAP:
                group.append(item)
                end = max(end, loc.offset + loc.length)
                continue
            spans.append(_Span(pack, start, end, tuple(group)))
            group, start, end = [item], loc.offset, loc.offset + loc.length
        spans.append(_Span(pack, start, end, tuple(group)))
    return spans


def fetch_version(
    objects: TeamObjects, cache: VersionCache, repo_id: str, version_id: str
) -> Fetched:
    """Make ``version_id`` present in ``cache`` from the team cache (the caller holds the
    repository's lock). Raises VersionUnavailableError when the team cache lacks it."""
    document = read_document(objects, repo_id, version_id)
    if document is None:
        raise VersionUnavailableError(
            f"{repo_id}: version {version_id} is not in the team cache "
            f"{redact_url(objects.url)} (never uploaded, or removed by its gc)")
    _check_names(document, repo_id, version_id)
    lacking = {f.sha256: f for f in unique_contents(document.version.files)
               if not cache.objects.has(f.sha256)}
    requests = 1
    blobs: dict[str, bytes] = {}
    if lacking:
        try:
            spans = _snapshot_spans(document, lacking)
            requests += _read(objects, repo_id, spans, blobs)
        except RemoteNotFoundError:  # the snapshot was dropped meanwhile: the deltas serve
            log.info("%s: snapshot of %s is gone; reading its delta packs", repo_id, version_id)
            spans = plan_spans({sha: document.contents[sha] for sha in lacking})
            requests += _read(objects, repo_id, spans, blobs)
    nbytes, fetched = sum(len(b) for b in blobs.values()), len(blobs)
    with cache.staging(repo_id) as staging:
        planned = _plan(document, blobs)
        try:
            verified = cache.verify(planned, backend_version=document.version.backend_version)
        except VerificationError as exc:
            raise VerificationError(
                f"{repo_id}: the team cache {redact_url(objects.url)} holds altered content "
                f"for version {version_id}; refusing it, nothing published ({exc})") from None
        if verified.version_id != version_id:
            raise VerificationError(
                f"{repo_id}: the team cache's version {version_id} holds content that names "
                f"version {verified.version_id}; refusing it")
        published = cache.publish(
            staging, verified, source_url=document.version.source_url,
            fingerprint=document.version.fingerprint, refetchable=document.version.refetchable)
    log.info("%s: fetched %s from the team cache (%d contents, %d bytes, %d requests)",
             repo_id, version_id, fetched, nbytes, requests)
    return Fetched(published.version, fetched, nbytes, requests)


def _check_names(document: VersionDocument, repo_id: str, version_id: str) -> None:
    named = (document.version.repo_id, document.version.version_id)
    if named != (repo_id, version_id):
        raise VerificationError(
            f"{repo_id}: the team cache's document of {version_id} describes "
            f"{named[0]} {named[1]}; refusing it")


def _snapshot_spans(document: VersionDocument, lacking: Collection[str]) -> list[_Span]:
    snapshot = document.snapshot
    if not snapshot:
        return plan_spans({sha: document.contents[sha] for sha in lacking})
    wanted = {sha: snapshot[sha] for sha in lacking}
    size = sum(loc.length for loc in snapshot.values())
    lacking_bytes = sum(loc.length for loc in wanted.values())
    pack = document.snapshot_pack
    whole = {pack: size} if pack is not None and lacking_bytes > size * WHOLE_SHARE else None
    return plan_spans(wanted, whole=whole)


def _read(objects: TeamObjects, repo_id: str, spans: Iterable[_Span],
          blobs: dict[str, bytes]) -> int:
    count = 0
    for span in spans:
        key = pack_key(repo_id, span.pack)
        data = objects.get_range(key, span.start, span.end)
        count += 1
        for sha, loc in span.wanted:
            at = loc.offset - span.start
            blobs[sha] = data[at:at + loc.length]
    return count


def _plan(document: VersionDocument, blobs: dict[str, bytes]) -> list[PlannedFile]:
    """Files of the version for :func:`~dagfetch.cache.publish.verify`: each fetched content
    once, held in memory with the digest it must have (verify hashes it once, publish writes
    it once into the object store); the rest already local."""
    planned: list[PlannedFile] = []
    for f in document.version.files:
        if f.kind != "file":
            planned.append(PlannedFile(f.as_remote()))
            continue
        remote = RemoteFile(f.path, f.size, f.token, f"sha256:{f.sha256}", f.kind, f.target,
                            f.extra)
        data = blobs.pop(f.sha256, None)
        planned.append(PlannedFile(remote, sha256=f.sha256) if data is None
                       else PlannedFile(remote, data=data))
    return planned


def record_followed(cache: VersionCache, repo_id: str, version_id: str,
                    published_at: str | None) -> bool:
    """Make ``version_id`` current (the caller holds the lock); True when it changed."""
    changed = cache.current_id(repo_id) != version_id
    if changed:
        cache.switch_current(repo_id, version_id)
    now = utcnow().isoformat()
    changes: dict[str, object] = {"current": version_id, "last_check_at": now,
                                  "last_success_at": now, "last_error": None,
                                  "team_published_at": published_at}
    if changed:
        changes["last_change_at"] = now
    cache.update_state(repo_id, **changes)
    return changed
