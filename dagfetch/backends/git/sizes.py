"""The remembered size of every blob of the last listing, beside the git store.

A listing needs each file's size, and the store keeps no blob (their bytes went to the
cache's content store), so without this file every listing of a new commit would fetch the
whole commit again to learn the sizes of the files it did not change. A blob id names its
bytes forever, so the numbers never go stale; the file goes with the store when it is
rebuilt, and an unreadable one is ignored (the listing then reads the blobs, as it would
the first time).

The file is compact because it is part of what a cached repository costs on disk, which
issue 14 holds to a shallow clone's: raw ids in one column, sizes and Git LFS flags in
two more, the whole compressed (the ids do not shrink, the other two nearly vanish). That
is about 21 bytes per blob, where 0.1.0's JSON (still read, once, on upgrade) took 58.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from dagfetch.cache.metadata import write_bytes_atomic

# blob id (hex) -> (size, looks like a Git LFS pointer)
BlobSizes = dict[str, tuple[int, bool]]

FILE_NAME = "dagfetch-blob-sizes"
# what a write killed half-way leaves: write_bytes_atomic's temporary file, or 0.1.0's
LEFTOVER_PREFIXES = (f".{FILE_NAME}.", ".sizes-")
LEGACY_FILE_NAME = "dagfetch-blob-sizes.json"  # 0.1.0's JSON
MAGIC = b"dagfetch-blob-sizes 1\n"
# count, length of one raw id (20 for SHA-1 repositories, 32 for SHA-256 ones)
_HEADER = struct.Struct(">IB")


def encode(sizes: BlobSizes) -> bytes:
    """The file's bytes for ``sizes``. Ids of another length than the first one's (a store
    holds one object format, so none) are left out: they would be read again, not lost."""
    width = len(next(iter(sizes), "")) // 2 or 20
    kept = [(blob_id, entry) for blob_id, entry in sizes.items() if len(blob_id) == 2 * width]
    flags = bytearray((len(kept) + 7) // 8)
    for i, (_, (_, lfs)) in enumerate(kept):
        if lfs:
            flags[i // 8] |= 1 << (i % 8)
    body = b"".join((
        _HEADER.pack(len(kept), width),
        bytes.fromhex("".join(blob_id for blob_id, _ in kept)),  # one call: 2,000 cost 0.5 ms
        struct.pack(f">{len(kept)}Q", *(size for _, (size, _) in kept)),
        bytes(flags),
    ))
    return MAGIC + zlib.compress(body, 6)


def decode(data: bytes) -> BlobSizes:
    """The sizes in a file's bytes; ValueError when they are not such a file."""
    if not data.startswith(MAGIC):
        raise ValueError("not a blob sizes file")
    inflate = zlib.decompressobj()
    try:
        body = inflate.decompress(data[len(MAGIC):])
    except zlib.error as exc:
        raise ValueError(f"damaged blob sizes file: {exc}") from None
    if not inflate.eof or inflate.unused_data:
        raise ValueError("damaged blob sizes file: cut short or followed by other bytes")
    count, width = _HEADER.unpack_from(body)
    ids_at = _HEADER.size
    sizes_at = ids_at + count * width
    flags_at = sizes_at + 8 * count
    if width not in (20, 32) or len(body) != flags_at + (count + 7) // 8:
        raise ValueError("damaged blob sizes file: wrong length")
    numbers = struct.unpack_from(f">{count}Q", body, sizes_at)
    ids = body[ids_at:sizes_at].hex()
    step = 2 * width
    return {
        ids[i * step: (i + 1) * step]: (numbers[i], bool(body[flags_at + i // 8] >> (i % 8) & 1))
        for i in range(count)
    }


def load(folder: Path) -> BlobSizes:
    """The sizes remembered in ``folder``; empty when none are or the file is damaged."""
    try:
        return decode((folder / FILE_NAME).read_bytes())
    except FileNotFoundError:
        return _load_legacy(folder)
    except (OSError, ValueError, struct.error):
        return {}


def _load_legacy(folder: Path) -> BlobSizes:
    """0.1.0's JSON file, so that the first listing after an upgrade does not fetch the
    whole commit again (the next save replaces it)."""
    try:
        data = json.loads((folder / LEGACY_FILE_NAME).read_bytes())
        return {sha: (int(size), bool(lfs)) for sha, (size, lfs) in data["blobs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(folder: Path, sizes: BlobSizes) -> None:
    """Replace the remembered sizes by ``sizes``, atomically (not flushed to disk: a file
    a crash damaged is ignored, and the sizes are asked of the remote again)."""
    write_bytes_atomic(folder / FILE_NAME, encode(sizes), durable=False)
    (folder / LEGACY_FILE_NAME).unlink(missing_ok=True)


def forget(folder: Path) -> None:
    for name in (FILE_NAME, LEGACY_FILE_NAME):
        (folder / name).unlink(missing_ok=True)
