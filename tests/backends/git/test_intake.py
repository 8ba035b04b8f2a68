"""The received pack read once (``intake.read_pack``), against packs git itself writes: offset
deltas in chains, deltas on bases named by id, a thin pack's deltas on objects outside it. Every
object must come out with the bytes git's own object store holds under its id."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from dulwich.objects import Blob, ObjectID
from dulwich.pack import UnresolvedDeltas
from dulwich.repo import Repo

from dagfetch.backends.git.intake import BlobShelf, read_pack
from tests.servers.git import GIT_ENV, git


def _repository(tmp_path: Path) -> Path:
    """Three commits of 40 similar files (git deltifies them), in folders."""
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work)
    for commit in range(3):
        for i in range(40):
            target = work / f"d{i % 4}" / f"f{i}.py"
            target.parent.mkdir(exist_ok=True)
            body = "".join(f"line {n} of file {i % 3}\n" for n in range(200))
            target.write_text(body + f"# {i} {commit}\n")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"c{commit}", cwd=work)
    return work


def _pack(work: Path, revs: str, *args: str) -> bytes:
    return subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout", "-q", *args], cwd=work, input=revs.encode(),
        capture_output=True, check=True, env={**os.environ, **GIT_ENV},
    ).stdout


def _ids(work: Path, *revs: str) -> list[str]:
    return [line.split()[0] for line in git("rev-list", "--objects", *revs, cwd=work).splitlines()]


def _read(
    pack: bytes, scratch: Path, get_raw: object, ids: list[str]
) -> dict[str, tuple[int, bytes]]:
    """What read_pack gives for ``ids``: (type, bytes) of the commits, trees and blobs."""
    scratch.mkdir(exist_ok=True)
    shelf = BlobShelf(scratch, keep_bytes=4096)  # most blobs spill to files: bases read back
    try:
        others = read_pack(io.BytesIO(pack), shelf, get_raw)  # type: ignore[arg-type]
        got = {o.id.decode(): (o.type_num, o.as_raw_string()) for o in others}
        for sha in ids:
            found = shelf.get(sha)
            if found is not None:
                got[sha] = (Blob.type_num, found[0])
        return got
    finally:
        shelf.clear()


def _nothing_outside(sha: bytes) -> tuple[int, bytes]:
    raise KeyError(sha)


@pytest.mark.parametrize("offsets", [True, False], ids=["offset-deltas", "deltas-by-id"])
def test_every_object_of_a_deltified_pack_comes_out_with_its_bytes(
    tmp_path: Path, offsets: bool
) -> None:
    work = _repository(tmp_path)
    pack = _pack(work, "main\n", *(["--delta-base-offset"] if offsets else []), "--depth=10")
    ids = _ids(work, "--all")
    got = _read(pack, tmp_path / "scratch", _nothing_outside, ids)
    with Repo(str(work)) as repo:
        assert got == {sha: repo.object_store.get_raw(ObjectID(sha.encode())) for sha in ids}


def test_a_thin_pack_takes_its_bases_from_outside_or_names_them(tmp_path: Path) -> None:
    work = _repository(tmp_path)
    pack = _pack(work, "HEAD\n^HEAD~1\n", "--thin", "--delta-base-offset")
    new = _ids(work, "HEAD", "^HEAD~1")
    with pytest.raises(UnresolvedDeltas) as raised:
        _read(pack, tmp_path / "scratch", _nothing_outside, new)
    # the bases it names are objects the previous commit has (what the store would hold)
    assert raised.value.shas and {s.decode() for s in raised.value.shas} <= set(
        _ids(work, "HEAD~1"))
    with Repo(str(work)) as repo:
        got = _read(pack, tmp_path / "scratch", repo.object_store.get_raw, new)
        assert got == {sha: repo.object_store.get_raw(ObjectID(sha.encode())) for sha in new}
