"""What a git listing reads from the local object store: each blob once on a cold sync,
none on a no-change sync (sizes are remembered per blob id), and a damaged sizes file costs
at most one failed sync. Every test talks to a real git daemon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dagfetch.backends.git import fetcher as git_fetcher
from dagfetch.backends.git.store import SIZES_FILE, GitStore
from dagfetch.errors import FetchError, VerificationError
from tests.backends.git.helpers import REPO, make_ws, store_path, tree_files
from tests.servers.git import GitRemote, GitServers

FILES = {f"dags/d{i % 3}/f{i:03}.py": f"# dag {i}\nX = {i}\n".encode() for i in range(60)}
LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               b"size 12345\n")


@pytest.fixture
def remote(git_servers: GitServers, tmp_path: Path) -> GitRemote:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)
    for path, data in FILES.items():
        remote.write(path, data)
    remote.push()
    return remote


@pytest.fixture
def blob_reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every blob the git backend reads from its local object store."""
    reads: list[bytes] = []
    real = GitStore.blob

    def counting(self: GitStore, sha: bytes) -> bytes:
        reads.append(sha)
        return real(self, sha)

    monkeypatch.setattr(GitStore, "blob", counting)
    return reads


def test_cold_sync_reads_each_blob_once_and_no_change_reads_none(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes]
) -> None:
    ws = make_ws(remote, tmp_path)
    assert ws.sync_one(REPO).downloaded == len(FILES)
    # the listing reads each blob for its size; the fetch writes the bytes it kept
    assert len(blob_reads) == len(FILES) == len(set(blob_reads))
    assert tree_files(ws.path(REPO)) == FILES
    blob_reads.clear()

    assert not ws.sync_one(REPO).changed
    assert blob_reads == []  # sizes came from the remembered file

    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    second = ws.sync_one(REPO)
    assert (second.downloaded, second.reused) == (1, len(FILES) - 1)
    assert len(blob_reads) == 1  # the one new blob, read once
    assert (ws.path(REPO) / "dags/d0/f000.py").read_bytes() == b"# changed\n"
    sizes = json.loads((store_path(ws) / SIZES_FILE).read_text())["blobs"]
    assert len(sizes) == len(FILES)  # only the newest listing's blobs are remembered


def test_blobs_beyond_the_kept_bytes_are_read_again(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_fetcher, "KEEP_LISTED_BYTES", 100)
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    # the few blobs that fit in 100 bytes are written from memory, the rest read twice
    assert 2 * len(FILES) - 6 <= len(blob_reads) < 2 * len(FILES)
    assert tree_files(ws.path(REPO)) == FILES


def test_lfs_flag_is_remembered_with_the_size(remote: GitRemote, tmp_path: Path) -> None:
    remote.write("data/model.bin", LFS_POINTER)
    remote.push()
    make_ws(remote, tmp_path, options={"lfs": "warn"}).sync_one(REPO)
    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    # same cache, same store: the pointer's blob is not read again, its flag is remembered
    with pytest.raises(FetchError, match=r"LFS pointer file\(s\) \('data/model.bin'\)"):
        make_ws(remote, tmp_path).sync_one(REPO)


def test_unreadable_sizes_file_is_ignored(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes]
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    (store_path(ws) / SIZES_FILE).write_text('{"blobs": [1, 2')
    blob_reads.clear()
    assert not ws.sync_one(REPO).changed
    assert blob_reads == []  # a no-change sync ends at the ref's commit: no listing at all
    fetcher = ws.fetcher_for(ws.manifest.get(REPO))
    try:
        fetcher.list()
    finally:
        fetcher.close()
    assert len(blob_reads) == len(FILES)  # listed the hard way
    sizes = json.loads((store_path(ws) / SIZES_FILE).read_text())["blobs"]
    assert len(sizes) == len(FILES)  # and remembered again


def test_wrong_remembered_size_fails_one_sync_then_heals(
    remote: GitRemote, tmp_path: Path
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    first = ws.path(REPO)
    path = store_path(ws) / SIZES_FILE
    data = json.loads(path.read_text())
    damaged = git_fetcher.git_blob_id(FILES["dags/d0/f000.py"])  # a file that stays
    data["blobs"][damaged][0] += 7
    path.write_text(json.dumps(data))
    remote.write("dags/d1/f001.py", b"# changed\n")
    remote.push()

    with pytest.raises(VerificationError, match="the listing said"):
        ws.sync_one(REPO)
    assert ws.path(REPO) == first  # the previous version keeps serving
    assert not path.exists()  # the fetch saw the real size and dropped the file

    assert ws.sync_one(REPO).changed
    assert tree_files(ws.path(REPO)) == {**FILES, "dags/d1/f001.py": b"# changed\n"}
