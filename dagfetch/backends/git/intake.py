"""A received pack, read once: commits and trees for the store, blobs for the fetch.

A pack used to be indexed into the local store (every object inflated and hashed), then each
blob read back out of it for its size, then again for the fetch, and the store kept every
blob for ever beside the content store's copy. Now :func:`read_pack` walks the pack once
(each object inflated once, its id computed once, deltas resolved against objects of the same
pack) and hands each blob to a :class:`BlobShelf`: the listing takes its size there and the
fetch writes its bytes from there, trusting the id the walk computed from those very bytes.
Only commits, trees and tags go into the store, which is what the next fetch's negotiation and
a later listing of an old commit need.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from dulwich.errors import ApplyDeltaError
from dulwich.object_format import SHA1
from dulwich.objects import Blob, ObjectID, RawObjectID, ShaFile, sha_to_hex
from dulwich.pack import (
    DELTA_TYPES,
    OFS_DELTA,
    PackData,
    UnpackedObject,
    UnresolvedDeltas,
    apply_delta,
)

from dagfetch.cache.objects import git_blob_hasher

# Bytes of received blobs kept in memory; beyond this they wait in files until the fetch.
KEEP_BYTES = 32 << 20
SPILL_PREFIX = "git-blobs-"

GetRaw = Callable[[ObjectID], tuple[int, bytes]]


def git_blob_id(data: bytes) -> str:
    h = git_blob_hasher(len(data))
    h.update(data)
    return h.hexdigest()


class BlobShelf:
    """Blobs received by one fetcher, by id, until its fetch writes them.

    In memory up to ``keep_bytes``; the rest in files of a private folder under
    ``work_dir`` (``git-blobs-<pid>-<random>``), removed by :meth:`clear`. A folder whose
    process died is removed by the next process opening the store
    (:func:`remove_dead_spills`)."""

    def __init__(self, work_dir: Path, keep_bytes: int | None = None) -> None:
        self.work_dir = work_dir
        self.keep_bytes = KEEP_BYTES if keep_bytes is None else keep_bytes
        self._memory: dict[str, bytes] = {}
        self._kept = 0
        self._spill: Path | None = None
        self._spilled: set[str] = set()

    def __contains__(self, blob_id: str) -> bool:
        return blob_id in self._memory or blob_id in self._spilled

    def __len__(self) -> int:
        return len(self._memory) + len(self._spilled)

    def put(self, blob_id: str, data: bytes) -> None:
        if blob_id in self:
            return
        if self._kept + len(data) <= self.keep_bytes:
            self._memory[blob_id] = data
            self._kept += len(data)
            return
        if self._spill is None:
            self._spill = self.work_dir / f"{SPILL_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
            self._spill.mkdir()
        with open(self._spill / blob_id, "wb") as fh:
            fh.write(data)
        self._spilled.add(blob_id)

    def get(self, blob_id: str) -> tuple[bytes, bool] | None:
        """The blob's bytes and whether they are the very bytes its id was computed from
        (held in memory; a spilled blob was on disk since and is worth checking)."""
        data = self._memory.get(blob_id)
        if data is not None:
            return data, True
        if blob_id in self._spilled and self._spill is not None:
            try:
                with open(self._spill / blob_id, "rb") as fh:
                    return fh.read(), False
            except FileNotFoundError:  # removed under us: the fetch asks the remote again
                self._spilled.discard(blob_id)
        return None

    def clear(self) -> None:
        self._memory = {}
        self._kept = 0
        self._spilled = set()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None


def remove_dead_spills(work_dir: Path) -> None:
    """Remove the blob folders of processes that are gone (killed mid-sync)."""
    try:
        entries = list(os.scandir(work_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if not entry.name.startswith(SPILL_PREFIX):
            continue
        pid_text = entry.name[len(SPILL_PREFIX):].partition("-")[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# the start of an object's header, by type number, as git hashes it ("blob 12\0...")
_HEADERS = {1: b"commit ", 2: b"tree ", 3: b"blob ", 4: b"tag "}


def read_pack(spool: IO[bytes], shelf: BlobShelf, get_raw: GetRaw) -> list[ShaFile]:
    """Walk the complete pack in ``spool`` once: blobs go on ``shelf``, the other objects
    are returned for the store. A delta on an object outside the pack (a thin pack) is
    resolved from the shelf or ``get_raw`` (the store); dulwich's ``UnresolvedDeltas`` says
    its base is not here. Raises dulwich's errors on damage (the caller translates them).

    Each object is inflated once, in pack order (dulwich's own walk inflates every object
    twice: once to find where the next begins, once to resolve it), and a delta is resolved
    as soon as its base is known: a pack lists a delta's base before it, but for a base
    named by id (possibly outside the pack) that comes later, the delta waits for the end.
    Bases are read back from the shelf or the returned objects, so no more is held in memory
    than the shelf holds."""
    spool.seek(0)
    data = PackData("received pack", SHA1, file=spool)
    try:
        data.check()  # the trailing checksum over the whole pack
        others: list[ShaFile] = []
        kept: dict[bytes, tuple[int, bytes]] = {}  # id -> the pack's commits, trees, tags
        types: dict[bytes, int] = {}  # id -> type of every object the pack gave
        at: dict[int, bytes] = {}  # offset -> id, for offset deltas

        def body(sha: bytes) -> tuple[int, bytes]:
            found = kept.get(sha)
            if found is not None:
                return found
            held = shelf.get(sha.decode())
            if held is None:  # pragma: no cover - a blob of this pack is on the shelf
                raise KeyError(sha)
            return Blob.type_num, held[0]

        def add(offset: int, type_num: int, raw: bytes) -> bytes:
            header = _HEADERS.get(type_num)
            if header is None:
                raise AssertionError(f"an object of unknown type {type_num} in the pack")
            h = hashlib.sha1(header + b"%d\x00" % len(raw), usedforsecurity=False)
            h.update(raw)
            hexsha = h.hexdigest()
            sha = ObjectID(hexsha.encode())
            at[offset] = sha
            types[sha] = type_num
            if type_num == Blob.type_num:
                shelf.put(hexsha, raw)
            else:
                kept[sha] = (type_num, raw)
                others.append(ShaFile.from_raw_chunks(type_num, [raw], sha=sha))
            return sha

        # deltas whose base is not known yet, by what they wait for: resolved the moment it
        # is added (a pack may name a base by id before it), each looked at once
        on_offset: dict[int, list[UnpackedObject]] = {}
        on_id: dict[bytes, list[UnpackedObject]] = {}

        def base_of(unpacked: UnpackedObject) -> tuple[int, bytes] | None:
            """The base's type and bytes, or None after filing the delta as waiting."""
            base = unpacked.delta_base
            assert unpacked.offset is not None and base is not None
            if unpacked.pack_type_num == OFS_DELTA:
                assert isinstance(base, int)
                found = at.get(unpacked.offset - base)
                if found is None:
                    on_offset.setdefault(unpacked.offset - base, []).append(unpacked)
                    return None
                return body(found)
            assert isinstance(base, bytes)
            hexsha = ObjectID(sha_to_hex(RawObjectID(base)))
            if hexsha in types:
                return body(hexsha)
            try:
                return get_outside(hexsha)
            except KeyError:
                on_id.setdefault(hexsha, []).append(unpacked)
                return None

        def resolve(first: UnpackedObject) -> None:
            """Add ``first`` if its base is known, then every delta that waited for it (a
            work list, not recursion: a hostile pack can chain deltas without end)."""
            work = [first]
            while work:
                unpacked = work.pop()
                found = base_of(unpacked)
                if found is None:
                    continue
                type_num, source = found
                raw = b"".join(apply_delta(source, unpacked.decomp_chunks))
                if type_num != Blob.type_num and not raw:
                    # as dulwich refuses it: only a blob may be empty (a commit or tree of no
                    # bytes would pass the parsers and name an object git fsck rejects)
                    raise ApplyDeltaError(f"delta resolved to empty payload for type {type_num}")
                assert unpacked.offset is not None
                sha = add(unpacked.offset, type_num, raw)
                work.extend(on_offset.pop(unpacked.offset, ()))
                work.extend(on_id.pop(sha, ()))

        def get_outside(hexsha: ObjectID) -> tuple[int, bytes]:
            found = shelf.get(hexsha.decode())
            if found is not None:
                return Blob.type_num, found[0]
            return get_raw(hexsha)  # KeyError when the store lacks it too

        for unpacked in data.iter_unpacked(include_comp=False):
            type_num = unpacked.pack_type_num
            if type_num in DELTA_TYPES:
                resolve(unpacked)
                continue
            assert unpacked.offset is not None and unpacked.decomp_chunks is not None
            sha = add(unpacked.offset, type_num, b"".join(unpacked.decomp_chunks))
            for waiting in [*on_offset.pop(unpacked.offset, ()), *on_id.pop(sha, ())]:
                resolve(waiting)
        if on_id:  # bases outside the pack that neither the shelf nor the store holds
            raise UnresolvedDeltas(sorted(on_id))
        if on_offset:  # an offset delta points back at no object: the pack is damaged
            waiting = sum(len(v) for v in on_offset.values())
            raise AssertionError(f"{waiting} offset deltas on no object of the pack")
        return others
    finally:
        data.close()
