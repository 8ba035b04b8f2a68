"""The leading node's side: upload a version the local cache holds, then move the pointer.

Order (what makes a follower see the old version or the new one, never a part):

1. the delta pack (contents the team cache's published version does not hold), re-hashed
   from the local object store on the way so a damaged local cache never spreads;
2. the snapshot pack (every content of the version, in path order), unless the delta is
   already all of it (a first upload);
3. the version document (record and index);
4. the pointer, last: one PUT on an object store (a reader gets the old object or the new),
   a temporary file and a rename on a folder.

Two leaders uploading at once write packs under distinct names and complete documents, so
whichever pointer lands last names a complete version (last writer wins; fsspec offers no
portable conditional write). After the pointer moves, the snapshot of the version published
two uploads ago is dropped (its document keeps the delta locations): snapshots cost at most
two versions' worth of bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import attrs

from dagfetch.cache.records import utcnow
from dagfetch.cache.store import VersionCache
from dagfetch.errors import CacheError, RemoteNotFoundError
from dagfetch.models import CachedFile, Version
from dagfetch.redact import get_logger
from dagfetch.team.documents import (
    Location,
    Pointer,
    VersionDocument,
    document_key,
    new_pack_name,
    pack_key,
    pointer_key,
    unique_contents,
)
from dagfetch.team.objects import TeamObjects

log = get_logger(__name__)


@attrs.frozen
class Uploaded:
    """What an upload did for one version."""

    repo_id: str
    version_id: str
    new_contents: int
    new_bytes: int
    already_there: bool = False


def read_pointer(objects: TeamObjects, repo_id: str) -> Pointer | None:
    key = pointer_key(repo_id)
    try:
        return Pointer.from_bytes(objects.get(key), key)
    except RemoteNotFoundError:
        return None


def read_document(objects: TeamObjects, repo_id: str, version_id: str) -> VersionDocument | None:
    key = document_key(repo_id, version_id)
    try:
        return VersionDocument.from_bytes(objects.get(key), key)
    except RemoteNotFoundError:
        return None


def upload(objects: TeamObjects, cache: VersionCache, version: Version) -> Uploaded:
    """Upload ``version`` (present in ``cache``) and make it the published one."""
    repo_id, version_id = version.repo_id, version.version_id
    pointer = read_pointer(objects, repo_id)
    if pointer is not None and pointer.version_id == version_id:
        return Uploaded(repo_id, version_id, 0, 0, already_there=True)
    previous = read_document(objects, repo_id, pointer.version_id) if pointer else None
    existing = read_document(objects, repo_id, version_id)
    if existing is not None:  # uploaded before (a revert, or another leader): re-point only
        _move_pointer(objects, existing, previous)
        return Uploaded(repo_id, version_id, 0, 0, already_there=True)

    known = dict(previous.contents) if previous else {}
    everything = unique_contents(version.files)
    lacking = [f for f in everything if f.sha256 not in known]
    contents: dict[str, Location] = {f.sha256: known[f.sha256] for f in everything
                                     if f.sha256 in known}
    new_bytes = 0
    if lacking:
        pack = new_pack_name()
        placed = _write_pack(objects, cache, repo_id, pack, lacking)
        contents.update(placed)
        new_bytes = sum(loc.length for loc in placed.values())
    if len(lacking) == len(everything) and lacking:
        snapshot = {f.sha256: contents[f.sha256] for f in everything}  # the delta is all of it
    elif everything:
        snapshot = _write_pack(objects, cache, repo_id, new_pack_name(), everything)
    else:
        snapshot = None
    document = VersionDocument(
        attrs.evolve(version, path=""), contents, snapshot,
        previous=pointer.version_id if pointer else None, uploaded_at=utcnow().isoformat(),
    )
    objects.put(document_key(repo_id, version_id), document.to_bytes())
    _move_pointer(objects, document, previous)
    log.info("%s: uploaded %s to the team cache (%d new contents, %d bytes)",
             repo_id, version_id, len(lacking), new_bytes)
    return Uploaded(repo_id, version_id, len(lacking), new_bytes)


def _move_pointer(
    objects: TeamObjects, document: VersionDocument, previous: VersionDocument | None
) -> None:
    version = document.version
    pointer = Pointer(version.repo_id, version.version_id,
                      document_key(version.repo_id, version.version_id), utcnow().isoformat())
    objects.put(pointer_key(version.repo_id), pointer.to_bytes())
    if previous is not None and previous.previous and previous.previous != version.version_id:
        drop_snapshot(objects, version.repo_id, previous.previous,
                      keep=frozenset({version.version_id}))


def drop_snapshot(objects: TeamObjects, repo_id: str, version_id: str, *,
                  keep: frozenset[str] = frozenset()) -> bool:
    """Remove a version's separate snapshot pack (not one its delta locations use) and the
    document's mention of it; followers then read its contents from the delta packs."""
    if version_id in keep:
        return False
    document = read_document(objects, repo_id, version_id)
    if document is None or document.snapshot is None:
        return False
    pack = document.snapshot_pack
    stripped = attrs.evolve(document, snapshot=None)
    objects.put(document_key(repo_id, version_id), stripped.to_bytes())
    if pack is not None and pack not in stripped.packs:
        objects.delete(pack_key(repo_id, pack))
    return True


def _write_pack(
    objects: TeamObjects, cache: VersionCache, repo_id: str, pack: str, files: list[CachedFile]
) -> dict[str, Location]:
    placed: dict[str, Location] = {}
    chunks = list(_pack_chunks(cache, files, pack, placed))
    objects.put(pack_key(repo_id, pack), b"".join(chunks))
    return placed


def _pack_chunks(
    cache: VersionCache, files: list[CachedFile], pack: str, placed: dict[str, Location]
) -> Iterator[bytes]:
    offset = 0
    for f in files:
        path = cache.layout.object_path(f.sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CacheError(f"{f.path}: object {f.sha256} is missing from the local cache; "
                             "run `dagfetch verify` and sync again") from None
        if hashlib.sha256(data).hexdigest() != f.sha256:
            raise CacheError(f"{f.path}: the local cache's copy is damaged (sha256 differs); "
                             "not uploading it; run `dagfetch verify` and sync again")
        placed[f.sha256] = Location(pack, offset, len(data))
        offset += len(data)
        yield data
