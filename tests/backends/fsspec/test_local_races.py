"""file:// sources changed under the sync's feet: a file swapped for a symlink to a private
file (or a folder for a link to another folder) between the listing and the copy must never
publish what the link points at; and the cache root is private to its owner."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dagfetch.errors import ChangedDuringSync, DagfetchError
from dagfetch.testing import one_repository
from tests.backends.fsspec.hooks import sync_with_hook

SECRET = b"private key material 7f3a9c"
# the public files have the secret's size: a size check after the copy cannot catch a swap
PUBLIC = b"x = 1  # " + b"-" * (len(SECRET) - 10) + b"\n"
assert len(PUBLIC) == len(SECRET)


def cache_holds(root: Path, needle: bytes) -> list[Path]:
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            if not full.is_symlink() and needle in full.read_bytes():
                found.append(full)
    return found


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "dag.py").write_bytes(PUBLIC)
    (repo / "lib" / "util.py").write_bytes(PUBLIC)
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.txt").write_bytes(SECRET)
    (private / "util.py").write_bytes(SECRET)
    os.chmod(private / "secret.txt", 0o600)
    return repo


def test_a_file_swapped_for_a_symlink_after_the_listing_is_never_followed(
    source: Path, tmp_path: Path
) -> None:
    ws = one_repository(str(source), tmp_path)

    def swap() -> None:
        (source / "dag.py").unlink()
        (source / "dag.py").symlink_to(tmp_path / "private" / "secret.txt")

    with pytest.raises(ChangedDuringSync, match=r"dag\.py"):
        sync_with_hook(ws, "r", swap)
    assert cache_holds(tmp_path / "cache", SECRET) == []


def test_a_folder_swapped_for_a_symlink_after_the_listing_is_never_followed(
    source: Path, tmp_path: Path
) -> None:
    ws = one_repository(str(source), tmp_path)

    def swap() -> None:
        (source / "lib" / "util.py").unlink()
        (source / "lib").rmdir()
        (source / "lib").symlink_to(tmp_path / "private")

    with pytest.raises(ChangedDuringSync, match="symlink"):
        sync_with_hook(ws, "r", swap)
    assert cache_holds(tmp_path / "cache", SECRET) == []


def test_a_racing_swap_in_a_loop_never_publishes_the_target(
    source: Path, tmp_path: Path
) -> None:
    """A writer flips dag.py between a file and a link to the private file as fast as it
    can while syncs run: each sync publishes the file or fails, never the private bytes."""
    ws = one_repository(str(source), tmp_path)
    stop = threading.Event()
    link = source / "dag.py.link"

    def flip() -> None:
        while not stop.is_set():
            for name in ("dag.py",):
                tmp = source / f".{name}.tmp"
                tmp.write_bytes(PUBLIC)
                os.replace(tmp, source / name)
                if link.exists() or link.is_symlink():
                    link.unlink()
                link.symlink_to(tmp_path / "private" / "secret.txt")
                os.replace(link, source / name)

    racer = threading.Thread(target=flip, daemon=True)
    racer.start()
    outcomes = {"published": 0, "refused": 0}
    try:
        for _ in range(40):
            try:
                ws.sync_one("r")
                outcomes["published"] += 1
            except DagfetchError:
                outcomes["refused"] += 1
            assert cache_holds(tmp_path / "cache", SECRET) == []
    finally:
        stop.set()
        racer.join()
    print(f"racing swaps: {outcomes}")
    assert sum(outcomes.values()) == 40


def test_the_cache_root_is_created_private(source: Path, tmp_path: Path) -> None:
    ws = one_repository(str(source), tmp_path, cache="fresh/cache")
    ws.sync_one("r")
    assert stat.S_IMODE(os.stat(tmp_path / "fresh" / "cache").st_mode) == 0o700


def test_an_existing_cache_root_keeps_its_mode(source: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)  # noqa: S103 - a root shared on purpose
    one_repository(str(source), tmp_path, cache="shared").sync_one("r")
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
