"""What the team cache holds, per repository, and the JSON of each document::

    <url>/<repo_id>/pointer.json             the published version: its id and its document
    <url>/<repo_id>/versions/<id>.json       a version: its record (per-file sha256) and the
                                             index of where each content lives (gzipped JSON)
    <url>/<repo_id>/packs/<ms>-<hex>.pack    contents, concatenated: a version's new contents
                                             (its *delta*), or all of them (its *snapshot*)

A version document names, for every content of the version, the delta pack that first
brought it (``contents``: sha256 -> pack, offset, length), and, while the version is recent,
a snapshot pack holding every content of the version once, in path order (``snapshot``),
which a cold reader fetches in one GET and a warm one in ranged GETs of what it lacks. Packs are
named by the time they were written so that gc can spare packs an upload is still writing.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from dagfetch.cache.layout import check_version_id
from dagfetch.errors import FetchError
from dagfetch.models import CachedFile, Version
from dagfetch.paths import safe_relpath

DOCUMENT_FORMAT = 1
#: the most a version document may unpack to (about a million files)
MAX_DOCUMENT = 512 * 2**20


def pointer_key(repo_id: str) -> str:
    return f"{repo_id}/pointer.json"


def document_key(repo_id: str, version_id: str) -> str:
    return f"{repo_id}/versions/{check_version_id(version_id)}.json"


def versions_folder(repo_id: str) -> str:
    return f"{repo_id}/versions"


def packs_folder(repo_id: str) -> str:
    return f"{repo_id}/packs"


def pack_key(repo_id: str, pack: str) -> str:
    return f"{packs_folder(repo_id)}/{pack}"


def new_pack_name() -> str:
    return f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:16]}.pack"


def pack_written_at(pack: str) -> float | None:
    """When a pack was written (seconds since the epoch), read from its name."""
    stamp, _, _ = pack.partition("-")
    return int(stamp) / 1000 if stamp.isdigit() else None


@attrs.frozen
class Location:
    """Where one content lives: ``length`` bytes at ``offset`` of pack ``pack``."""

    pack: str
    offset: int
    length: int


@attrs.frozen
class Pointer:
    repo_id: str
    version_id: str
    document: str
    published_at: str

    def to_bytes(self) -> bytes:
        return _dump(attrs.asdict(self) | {"format": DOCUMENT_FORMAT})

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Pointer:
        raw = _load(data, where)
        try:
            pointer = cls(str(raw["repo_id"]), check_version_id(str(raw["version_id"])),
                          str(raw["document"]), str(raw["published_at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FetchError(f"team cache: {where} is not a pointer ({exc})") from None
        return pointer


@attrs.frozen
class VersionDocument:
    """One version in the team cache: what the local cache's record holds, and its index."""

    version: Version
    contents: dict[str, Location]
    snapshot: dict[str, Location] | None = None
    previous: str | None = None
    uploaded_at: str = ""

    @property
    def packs(self) -> set[str]:
        """Every pack this document references."""
        found = {loc.pack for loc in self.contents.values()}
        found.update(loc.pack for loc in (self.snapshot or {}).values())
        return found

    @property
    def snapshot_pack(self) -> str | None:
        if not self.snapshot:
            return None
        return next(iter(self.snapshot.values())).pack

    def to_bytes(self) -> bytes:
        """Compact JSON, gzipped: each file's entry carries its content's place in a delta
        pack (``at``: index into ``packs``, offset; the length is the file's size), and the
        snapshot's offsets are implied by its order (:func:`unique_contents`), so no digest
        is written twice."""
        v = self.version
        packs = sorted({loc.pack for loc in self.contents.values()})
        index = {pack: i for i, pack in enumerate(packs)}
        entries = []
        for f in v.files:
            entry = f.to_json()
            if f.kind == "file":
                loc = self.contents[f.sha256]
                entry["at"] = [index[loc.pack], loc.offset]
            entries.append(entry)
        data: dict[str, Any] = {
            "format": DOCUMENT_FORMAT,
            "repo_id": v.repo_id,
            "version_id": v.version_id,
            "source_url": v.source_url,
            "fetched_at": v.fetched_at.isoformat(),
            "backend_version": v.backend_version,
            "fingerprint": v.fingerprint,
            "refetchable": v.refetchable,
            "packs": packs,
            "files": entries,
            "snapshot": self.snapshot_pack,
            "previous": self.previous,
            "uploaded_at": self.uploaded_at,
        }
        # gzip: a document lists every file, and the paths and numbers compress well
        return gzip.compress(_dump(data), mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> VersionDocument:
        raw = _load(_gunzip(data, where), where)
        try:
            packs = [_pack_name(p) for p in raw["packs"]]  # checked once, not per file
            files = []
            contents: dict[str, Location] = {}
            for entry in raw["files"]:
                f = CachedFile.from_json(entry)
                if safe_relpath(f.path) != f.path:
                    raise ValueError(f"{f.path!r} is not a normal relative path")
                if f.kind == "file":
                    pack, offset = entry["at"]
                    contents[f.sha256] = _placed(packs[int(pack)], offset, f.size)
                files.append(f)
            version = Version(
                repo_id=str(raw["repo_id"]),
                version_id=check_version_id(str(raw["version_id"])),
                path="",
                source_url=str(raw["source_url"]),
                fetched_at=datetime.fromisoformat(raw["fetched_at"]),
                files=tuple(files),
                backend_version=raw.get("backend_version"),
                fingerprint=str(raw.get("fingerprint", "")),
                refetchable=bool(raw.get("refetchable", False)),
            )
            snapshot = None
            if raw.get("snapshot"):
                snapshot = snapshot_locations(str(raw["snapshot"]), version.files)
        except Exception as exc:  # a document is remote input: any shape error is its fault
            raise FetchError(f"team cache: {where} is not a version document ({exc})") from None
        return cls(version, contents, snapshot, raw.get("previous"), str(raw.get("uploaded_at")))


def unique_contents(files: Iterable[CachedFile]) -> list[CachedFile]:
    """One file per content, in path order: the order of a snapshot pack."""
    seen: dict[str, CachedFile] = {}
    for f in sorted(files, key=lambda f: f.path):
        if f.kind == "file" and f.sha256 not in seen:
            seen[f.sha256] = f
    return list(seen.values())


def snapshot_locations(pack: str, files: Iterable[CachedFile]) -> dict[str, Location]:
    """Where each content lives in a snapshot pack written in :func:`unique_contents` order."""
    pack = _pack_name(pack)
    placed: dict[str, Location] = {}
    offset = 0
    for f in unique_contents(files):
        placed[f.sha256] = _placed(pack, offset, f.size)
        offset += f.size
    return placed


def _pack_name(raw: Any) -> str:
    pack = str(raw)
    if not pack or "/" in pack or pack.startswith("."):
        raise ValueError(f"bad pack name {pack!r}")
    return pack


def _placed(pack: str, offset: Any, length: Any) -> Location:
    """A location in a pack whose name :func:`_pack_name` checked."""
    offset, length = int(offset), int(length)
    if offset < 0 or length < 0:
        raise ValueError(f"bad location {pack!r} {offset} {length}")
    return Location(pack, offset, length)


def _gunzip(data: bytes, where: str) -> bytes:
    """A gzipped document, unpacked up to :data:`MAX_DOCUMENT` bytes (a document is remote
    input: a small object must not unpack into all of memory)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    unpack = zlib.decompressobj(wbits=31)
    try:
        out = unpack.decompress(data, MAX_DOCUMENT)
    except zlib.error as exc:
        raise FetchError(f"team cache: {where} is corrupt ({exc})") from None
    if unpack.unconsumed_tail:
        raise FetchError(f"team cache: {where} unpacks to more than {MAX_DOCUMENT} bytes")
    return out


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def _load(data: bytes, where: str) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(f"team cache: {where} is corrupt ({exc})") from None
    if not isinstance(raw, dict):
        raise FetchError(f"team cache: {where} is corrupt (not an object)")
    if raw.get("format") != DOCUMENT_FORMAT:
        raise FetchError(f"team cache: {where} has format {raw.get('format')!r}, "
                         f"this dagfetch reads {DOCUMENT_FORMAT}")
    return raw
