"""gc of the team cache, run by the leading node, by the local cache's rules.

Per repository it keeps the pointer's version, every version pinned (by runs in the graph
store's database, passed in by the caller) and the newest ``keep_versions`` uploads; it
removes the other version documents, then every pack no kept document references, except
packs younger than ``grace_seconds`` (an upload in flight writes its packs before its
document). Snapshots of kept versions other than the pointer's and the pinned ones are dropped
(their contents stay reachable through the delta packs).
"""

from __future__ import annotations

import time
from collections.abc import Collection

import attrs

from dagfetch.redact import get_logger
from dagfetch.team.documents import (
    VersionDocument,
    document_key,
    pack_key,
    pack_written_at,
    packs_folder,
    versions_folder,
)
from dagfetch.team.objects import TeamObjects
from dagfetch.team.upload import drop_snapshot, read_document, read_pointer

log = get_logger(__name__)

DEFAULT_PACK_GRACE = 3600.0


@attrs.frozen
class TeamGcReport:
    repo_id: str
    kept: tuple[str, ...]
    removed_versions: tuple[str, ...]
    removed_packs: int
    removed_bytes: int
    dry_run: bool = False


def collect(
    objects: TeamObjects,
    repo_id: str,
    *,
    keep_versions: int,
    pinned: Collection[str] = (),
    dry_run: bool = False,
    grace_seconds: float = DEFAULT_PACK_GRACE,
) -> TeamGcReport:
    pointer = read_pointer(objects, repo_id)
    documents: dict[str, VersionDocument] = {}
    for name, _ in objects.list(versions_folder(repo_id)):
        if name.endswith(".json"):
            document = read_document(objects, repo_id, name[: -len(".json")])
            if document is not None:
                documents[document.version.version_id] = document
    newest = sorted(documents, key=lambda v: documents[v].uploaded_at, reverse=True)
    keep = set(newest[:keep_versions]) | set(pinned) & set(documents)
    if pointer is not None:
        keep.add(pointer.version_id)
    removed = sorted(set(documents) - keep)
    with_snapshot = {v for v in keep if documents[v].snapshot is not None}
    snapshot_keepers = set(pinned) | ({pointer.version_id} if pointer else set())
    if pointer is not None and pointer.version_id in documents:
        previous = documents[pointer.version_id].previous  # a follower may be mid-fetch of it
        if previous:
            snapshot_keepers.add(previous)
    if not dry_run:
        for version_id in removed:
            objects.delete(document_key(repo_id, version_id))
        for version_id in sorted(with_snapshot - snapshot_keepers):
            drop_snapshot(objects, repo_id, version_id)
            stripped = read_document(objects, repo_id, version_id)
            if stripped is not None:
                documents[version_id] = stripped
    referenced: set[str] = set()
    for version_id in keep:
        referenced |= documents[version_id].packs
    now = time.time()
    removed_packs = removed_bytes = 0
    for name, info in objects.list(packs_folder(repo_id)):
        written = pack_written_at(name)
        if name in referenced or written is None or now - written < grace_seconds:
            continue
        removed_packs += 1
        removed_bytes += int(info.get("size") or 0)
        if not dry_run:
            objects.delete(pack_key(repo_id, name))
    log.info("%s: team cache gc kept %d versions, removed %d and %d packs (%d bytes)",
             repo_id, len(keep), len(removed), removed_packs, removed_bytes)
    return TeamGcReport(repo_id, tuple(sorted(keep)), tuple(removed), removed_packs,
                        removed_bytes, dry_run)
