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

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from dulwich.object_format import SHA1
from dulwich.objects import Blob, ObjectID, RawObjectID, ShaFile, sha_to_hex
from dulwich.pack import PackData, UnpackedObjectIterator

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


def read_pack(spool: IO[bytes], shelf: BlobShelf, get_raw: GetRaw) -> list[ShaFile]:
    """Walk the complete pack in ``spool`` once: blobs go on ``shelf``, the other objects
    are returned for the store. A delta on an object outside the pack (a thin pack) is
    resolved from the shelf or ``get_raw`` (the store); dulwich's ``UnresolvedDeltas`` says
    its base is not here. Raises dulwich's errors on damage (the caller translates them)."""
    spool.seek(0)
    data = PackData("received pack", SHA1, file=spool)
    try:
        data.check()  # the trailing checksum over the whole pack

        def outside(sha: RawObjectID | ObjectID) -> tuple[int, bytes]:
            hexsha = ObjectID(sha_to_hex(RawObjectID(sha)) if len(sha) == 20 else sha)
            found = shelf.get(hexsha.decode())
            if found is not None:
                return Blob.type_num, found[0]
            return get_raw(hexsha)  # KeyError when the store lacks it too

        others: list[ShaFile] = []
        for unpacked in UnpackedObjectIterator.for_pack_data(data, resolve_ext_ref=outside):
            type_num, chunks = unpacked.obj_type_num, unpacked.obj_chunks
            assert type_num is not None and chunks is not None
            sha = sha_to_hex(unpacked.sha())
            if type_num == Blob.type_num:
                shelf.put(sha.decode(), b"".join(chunks))
            else:
                others.append(ShaFile.from_raw_chunks(type_num, chunks, sha=sha))
        return others
    finally:
        data.close()
