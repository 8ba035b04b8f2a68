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
any pointer names a complete version. The pointer moves by compare-and-swap where the store
has one (S3's conditional PUTs; an OS lock on a folder): a leader moves it only from the
pointer it read before uploading, so a leader that lost the race never moves it back to what
it uploaded from an older view; it reports the winner and leaves the pointer alone
(:attr:`Uploaded.moved` false). On stores without conditional writes (GCS, Azure through
fsspec today) the last pointer written wins. After the pointer moves, the snapshot of the
version published two uploads ago is dropped (its document keeps the delta locations):
snapshots cost at most two versions' worth of bytes.
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
    #: False: another leader moved the pointer while this one uploaded (to ``pointer``)
    moved: bool = True
    #: the version the pointer names after this upload
    pointer: str | None = None


def read_pointer(objects: TeamObjects, repo_id: str) -> Pointer | None:
    key = pointer_key(repo_id)
    try:
        return Pointer.from_bytes(objects.get(key), key)
    except RemoteNotFoundError:
        return None


def read_pointer_tagged(objects: TeamObjects, repo_id: str) -> tuple[Pointer | None, str | None]:
    """The pointer and the tag a compare-and-swap of it compares (None, None: no pointer)."""
    key = pointer_key(repo_id)
    try:
        data, tag = objects.get_tagged(key)
    except RemoteNotFoundError:
        return None, None
    return Pointer.from_bytes(data, key), tag


def read_document(objects: TeamObjects, repo_id: str, version_id: str) -> VersionDocument | None:
    key = document_key(repo_id, version_id)
    try:
        return VersionDocument.from_bytes(objects.get(key), key)
    except RemoteNotFoundError:
        return None


def upload(objects: TeamObjects, cache: VersionCache, version: Version) -> Uploaded:
    """Upload ``version`` (present in ``cache``) and make it the published one."""
    repo_id, version_id = version.repo_id, version.version_id
    pointer, tag = read_pointer_tagged(objects, repo_id)
    if pointer is not None and pointer.version_id == version_id:
        return Uploaded(repo_id, version_id, 0, 0, already_there=True, pointer=version_id)
    previous = read_document(objects, repo_id, pointer.version_id) if pointer else None
    existing = read_document(objects, repo_id, version_id)
    if existing is not None:  # uploaded before (a revert, or another leader): re-point only
        moved = _move_pointer(objects, existing, previous, tag)
        return _uploaded(objects, version, 0, 0, moved, already_there=True)

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
    moved = _move_pointer(objects, document, previous, tag)
    log.info("%s: uploaded %s to the team cache (%d new contents, %d bytes)",
             repo_id, version_id, len(lacking), new_bytes)
    return _uploaded(objects, version, len(lacking), new_bytes, moved)


def _uploaded(objects: TeamObjects, version: Version, new_contents: int, new_bytes: int,
              moved: bool, *, already_there: bool = False) -> Uploaded:
    repo_id, version_id = version.repo_id, version.version_id
    if moved:
        return Uploaded(repo_id, version_id, new_contents, new_bytes, already_there,
                        pointer=version_id)
    winner = read_pointer(objects, repo_id)
    named = winner.version_id if winner else None
    log.warning("%s: another leader moved the team cache's pointer (to %s) while this one "
                "uploaded %s; the pointer stays where that leader put it", repo_id, named,
                version_id)
    return Uploaded(repo_id, version_id, new_contents, new_bytes, already_there,
                    moved=False, pointer=named)


def _move_pointer(objects: TeamObjects, document: VersionDocument,
                  previous: VersionDocument | None, tag: str | None) -> bool:
    """Move the pointer to ``document``'s version if it still is what was read (``tag``);
    False when another leader moved it first."""
    version = document.version
    pointer = Pointer(version.repo_id, version.version_id,
                      document_key(version.repo_id, version.version_id), utcnow().isoformat())
    if not objects.put_if(pointer_key(version.repo_id), pointer.to_bytes(), tag):
        return False
    if previous is not None and previous.previous and previous.previous != version.version_id:
        drop_snapshot(objects, version.repo_id, previous.previous,
                      keep=frozenset({version.version_id}))
    return True


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
