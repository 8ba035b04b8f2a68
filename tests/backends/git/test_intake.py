"""The received pack read once (``intake.read_pack``), against packs git itself writes: offset
deltas in chains, deltas on bases named by id, a thin pack's deltas on objects outside it. Every
object must come out with the bytes git's own object store holds under its id."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import types
import zlib
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Blob, ObjectID
from dulwich.pack import UnresolvedDeltas
from dulwich.repo import Repo

from dagfetch.backends.git.intake import BlobShelf, read_pack
from dagfetch.backends.git.store import GitStore
from dagfetch.errors import FetchError
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


# -- packs git would not write: crafted entry by entry ----------------------------------------

REF_DELTA = 7


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _entry(type_num: int, payload: bytes, base: bytes = b"") -> bytes:
    """One pack entry: the type-and-size header, a REF delta's base id, the zlib body."""
    size = len(payload)
    header = bytearray([(type_num << 4) | (size & 0x0F) | (0x80 if size > 0x0F else 0)])
    size >>= 4
    while size:
        header.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
    return bytes(header) + base + zlib.compress(payload)


def _delta(source: bytes, target: bytes) -> bytes:
    """A delta that builds ``target`` by insertion alone (any base of ``source``'s length)."""
    out = _varint(len(source)) + _varint(len(target))
    for i in range(0, len(target), 127):
        chunk = target[i : i + 127]
        out += bytes([len(chunk)]) + chunk
    return out


def _crafted(entries: list[bytes]) -> bytes:
    data = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    return data + hashlib.sha1(data, usedforsecurity=False).digest()  # the pack trailer


def test_a_chain_of_deltas_on_later_bases_is_resolved_in_one_walk(tmp_path: Path) -> None:
    """Each delta's base comes after it (the base named by id): a walk that retried the
    waiting deltas pass by pass would look at them n * n / 2 times."""
    contents = [f"version {n}\n".encode() * 3 for n in range(400)]
    ids = [Blob.from_string(c).id for c in contents]
    entries = [
        _entry(REF_DELTA, _delta(contents[n - 1], contents[n]), bytes.fromhex(ids[n - 1].decode()))
        for n in range(len(contents) - 1, 0, -1)
    ]
    entries.append(_entry(Blob.type_num, contents[0]))
    lookups: list[bytes] = []

    def outside(sha: bytes) -> tuple[int, bytes]:
        lookups.append(sha)
        raise KeyError(sha)

    got = _read(_crafted(entries), tmp_path / "scratch", outside, [i.decode() for i in ids])
    assert got == {i.decode(): (Blob.type_num, c) for i, c in zip(ids, contents, strict=True)}
    assert len(lookups) <= len(contents)  # each waiting delta asked outside once at most


def test_deltas_on_objects_nobody_has_are_named(tmp_path: Path) -> None:
    missing = Blob.from_string(b"never sent\n").id
    delta = _entry(REF_DELTA, _delta(b"never sent\n", b"x\n"), bytes.fromhex(missing.decode()))
    entries = [delta, _entry(Blob.type_num, b"present\n")]
    with pytest.raises(UnresolvedDeltas) as raised:
        _read(_crafted(entries), tmp_path / "scratch", _nothing_outside, [])
    assert raised.value.shas == [missing]


class _LyingServer:
    """Answers every fetch, a whole one too, with a delta on an object it never sends."""

    def __init__(self, pack: bytes) -> None:
        self.pack = pack
        self.fetches = 0

    def fetch_pack(self, path: bytes, determine_wants: Any, graph_walker: Any,
                   pack_data: Any, **kwargs: Any) -> Any:
        self.fetches += 1
        tip = {b"refs/heads/main": b"1" * 40}
        determine_wants(tip)
        pack_data(self.pack)
        return types.SimpleNamespace(refs=tip, new_shallow=set(), new_unshallow=set())


def test_a_server_whose_packs_never_resolve_is_an_error_not_endless_refetches(
    tmp_path: Path,
) -> None:
    missing = Blob.from_string(b"never sent\n").id
    server = _LyingServer(_crafted([_entry(REF_DELTA, _delta(b"never sent\n", b"x\n"),
                                           bytes.fromhex(missing.decode()))]))
    store = GitStore(tmp_path / "work", "dags")
    with store.open():
        shelf = BlobShelf(tmp_path / "work")
        with pytest.raises(FetchError, match="damaged or hostile"):
            store.fetch(server, "/dags.git", lambda refs: [b"1" * 40],  # type: ignore[arg-type]
                        shelf, depth=1, where="dags", conn_id=None)
    # the incremental fetch, its bases asked for once, then one whole fetch and its bases
    assert server.fetches == 4
