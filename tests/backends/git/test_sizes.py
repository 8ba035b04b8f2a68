"""The file of remembered blob sizes: what goes in comes out, a damaged file is refused as a
whole (never half read), and it stays small, since it is part of a cached repository's disk."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from dagfetch.backends.git import sizes
from dagfetch.backends.git.sizes import BlobSizes
from dagfetch.cache import metadata


def ids(count: int, width: int = 20) -> list[str]:
    return [hashlib.sha256(b"%d" % i).digest()[:width].hex() for i in range(count)]


def test_sizes_and_lfs_flags_come_back_as_they_went_in() -> None:
    remembered: BlobSizes = {
        blob_id: (i * 977 if i != 5 else 5 << 40, i % 3 == 0)
        for i, blob_id in enumerate(ids(13))
    }
    assert sizes.decode(sizes.encode(remembered)) == remembered
    assert sizes.decode(sizes.encode({})) == {}


def test_sha256_ids_are_kept_and_ids_of_another_length_left_out() -> None:
    long_ids = ids(3, 32)
    remembered: BlobSizes = {blob_id: (7, False) for blob_id in long_ids}
    assert sizes.decode(sizes.encode(remembered)) == remembered
    mixed = {**remembered, ids(1)[0]: (9, True)}
    assert sizes.decode(sizes.encode(mixed)) == remembered


def test_two_thousand_blobs_take_under_22_bytes_each() -> None:
    remembered: BlobSizes = {blob_id: (2048, False) for blob_id in ids(2000)}
    assert len(sizes.encode(remembered)) < 22 * 2000


@pytest.mark.parametrize("damage", [
    lambda data: data[:-1],  # cut short
    lambda data: data + b"\0",  # trailing bytes
    lambda data: b"X" + data[1:],  # not the magic
    lambda data: sizes.MAGIC + zlib.compress(b"\0\0\0\x09\x14" + b"\0" * 40),  # counts lie
    lambda data: sizes.MAGIC + b"not deflate",
])
def test_a_damaged_file_is_refused_whole(damage: Callable[[bytes], bytes], tmp_path: Path) -> None:
    data = sizes.encode({blob_id: (10, False) for blob_id in ids(40)})
    damaged = damage(data)
    with pytest.raises(ValueError, match="blob sizes file"):
        sizes.decode(damaged)
    (tmp_path / sizes.FILE_NAME).write_bytes(damaged)
    assert sizes.load(tmp_path) == {}


def test_save_replaces_the_file_and_forget_removes_both_forms(tmp_path: Path) -> None:
    (tmp_path / sizes.LEGACY_FILE_NAME).write_text('{"blobs": {}}')
    sizes.save(tmp_path, {ids(1)[0]: (1, False)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [sizes.FILE_NAME]
    sizes.forget(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_old_file_and_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {ids(1)[0]: (1, False)}
    sizes.save(tmp_path, old)

    def disk_full(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    # the new bytes are written to a temporary file; the disk fills before the rename
    monkeypatch.setattr(metadata.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        sizes.save(tmp_path, {blob_id: (2, True) for blob_id in ids(50)})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [sizes.FILE_NAME]
    assert sizes.load(tmp_path) == old
