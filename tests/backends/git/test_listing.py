"""What the git backend keeps in its local object store and reads from it: a received pack
is read once (its blobs go to the fetch and the content store, never into the store), sizes
are remembered per blob id, and whatever the store lacks is asked of the remote again: after
a forgotten size, a moved file, an evicted version. Every test talks to a real git daemon."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dulwich.objects import Blob
from dulwich.repo import Repo

from dagfetch.backends.git import GitFetcher, intake
from dagfetch.backends.git import fetcher as git_fetcher
from dagfetch.backends.git import sizes as blob_sizes
from dagfetch.backends.git.store import GitStore
from dagfetch.errors import FetchError, VerificationError
from dagfetch.workspace import Workspace
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

    def counting(self: GitStore, sha: bytes) -> bytes | None:
        reads.append(sha)
        return real(self, sha)

    monkeypatch.setattr(GitStore, "blob", counting)
    return reads


def stored_blobs(ws: Workspace) -> int:
    """How many blobs the repository's local git store holds."""
    repo = Repo(str(store_path(ws)), bare=True)
    try:
        store = repo.object_store
        return sum(1 for sha in store if store.get_raw(sha)[0] == Blob.type_num)
    finally:
        repo.close()


def test_the_store_keeps_no_blob_and_reads_none(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes]
) -> None:
    ws = make_ws(remote, tmp_path)
    assert ws.sync_one(REPO).downloaded == len(FILES)
    # sizes and bytes came from the pack as it was read: nothing read back from the store
    assert blob_reads == []
    assert tree_files(ws.path(REPO)) == FILES
    assert stored_blobs(ws) == 0  # the content store holds the files, once

    assert not ws.sync_one(REPO).changed

    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    second = ws.sync_one(REPO)
    assert (second.downloaded, second.reused) == (1, len(FILES) - 1)
    assert blob_reads == []
    assert stored_blobs(ws) == 0
    assert (ws.path(REPO) / "dags/d0/f000.py").read_bytes() == b"# changed\n"
    sizes = blob_sizes.load(store_path(ws))
    assert len(sizes) == len(FILES)  # only the newest listing's blobs are remembered


def test_blobs_beyond_the_kept_bytes_wait_in_files(
    remote: GitRemote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "KEEP_BYTES", 100)
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    assert tree_files(ws.path(REPO)) == FILES
    work = ws.cache.layout.work_dir(REPO)
    assert [p.name for p in work.iterdir() if p.name.startswith(intake.SPILL_PREFIX)] == []


def test_blob_folders_of_dead_processes_are_removed(remote: GitRemote, tmp_path: Path) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    work = ws.cache.layout.work_dir(REPO)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = work / f"{intake.SPILL_PREFIX}{dead}-0123"
    left.mkdir()
    (left / ("ab" * 20)).write_bytes(b"x")
    mine = work / f"{intake.SPILL_PREFIX}{os.getpid()}-4567"  # a live process's: kept
    mine.mkdir()
    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    ws.sync_one(REPO)
    assert not left.exists() and mine.exists()


def test_a_moved_file_is_fetched_again(remote: GitRemote, tmp_path: Path) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    remote.delete("dags/d0/f000.py")
    remote.write("moved/f000.py", FILES["dags/d0/f000.py"])
    remote.push()
    # the server sends no blob we "have"; its bytes went to the content store, so the
    # fetch asks for the commit afresh
    result = ws.sync_one(REPO)
    files = {**FILES, "moved/f000.py": FILES["dags/d0/f000.py"]}
    del files["dags/d0/f000.py"]
    assert result.changed and tree_files(ws.path(REPO)) == files
    assert stored_blobs(ws) == 0


def test_an_evicted_version_comes_back_from_trees_held_and_blobs_fetched(
    remote: GitRemote, tmp_path: Path
) -> None:
    ws = make_ws(remote, tmp_path, keep_versions=1)
    first = ws.sync_one(REPO).version_id or ""
    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    ws.sync_one(REPO)
    assert (REPO, first) in ws.gc().evicted
    assert tree_files(ws.path(REPO, first)) == FILES  # the store kept its commit and trees
    assert stored_blobs(ws) == 0


def listing_fetches(ws: Workspace) -> int:
    """How many packs a fresh fetcher asks the remote for to list the tip."""
    fetcher = ws.fetcher_for(ws.manifest.get(REPO))
    try:
        assert isinstance(fetcher, GitFetcher)
        fetcher.list()
        return fetcher.pack_fetches
    finally:
        fetcher.close()


def test_unreadable_sizes_file_is_ignored(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes]
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    path = store_path(ws) / blob_sizes.FILE_NAME
    path.write_bytes(path.read_bytes()[:-9])  # cut short, as by a full disk
    assert not ws.sync_one(REPO).changed  # a no-change sync ends at the ref's commit
    assert listing_fetches(ws) == 1  # the sizes asked of the remote, in one fetch
    assert len(blob_sizes.load(store_path(ws))) == len(FILES)  # and remembered again


def test_sizes_of_the_json_file_of_0_1_0_are_read_once_on_upgrade(
    remote: GitRemote, tmp_path: Path, blob_reads: list[bytes]
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    store = store_path(ws)
    remembered = blob_sizes.load(store)
    assert listing_fetches(ws) == 0  # the commit and the sizes are at hand
    # what 0.1.0 left beside its store
    (store / blob_sizes.FILE_NAME).unlink()
    (store / blob_sizes.LEGACY_FILE_NAME).write_text(json.dumps(
        {"blobs": {sha: [size, lfs] for sha, (size, lfs) in remembered.items()}}))
    assert blob_sizes.load(store) == remembered
    assert listing_fetches(ws) == 0  # nothing fetched afresh to learn the sizes
    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    assert ws.sync_one(REPO).downloaded == 1
    assert blob_reads == []
    assert not (store / blob_sizes.LEGACY_FILE_NAME).exists()  # replaced by the new file
    assert len(blob_sizes.load(store)) == len(FILES)


def test_what_a_sizes_write_killed_half_way_left_is_removed(
    remote: GitRemote, tmp_path: Path
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    store = store_path(ws)
    left = [store / f".{blob_sizes.FILE_NAME}.k1ll3d", store / ".sizes-0123.tmp"]  # 0.1.0's
    for path in left:
        path.write_bytes(b"half")
    assert not ws.sync_one(REPO).changed
    assert [path for path in left if path.exists()] == []
    assert len(blob_sizes.load(store)) == len(FILES)


def test_lfs_flag_is_remembered_with_the_size(remote: GitRemote, tmp_path: Path) -> None:
    remote.write("data/model.bin", LFS_POINTER)
    remote.push()
    make_ws(remote, tmp_path, options={"lfs": "warn"}).sync_one(REPO)
    remote.write("dags/d0/f000.py", b"# changed\n")
    remote.push()
    # same cache, same store: the pointer's blob is not read again, its flag is remembered
    with pytest.raises(FetchError, match=r"LFS pointer file\(s\) \('data/model.bin'\)"):
        make_ws(remote, tmp_path).sync_one(REPO)


def test_wrong_remembered_size_fails_one_sync_then_heals(
    remote: GitRemote, tmp_path: Path
) -> None:
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    first = ws.path(REPO)
    path = store_path(ws) / blob_sizes.FILE_NAME
    remembered = blob_sizes.load(store_path(ws))
    damaged = git_fetcher.git_blob_id(FILES["dags/d0/f000.py"])  # a file that stays
    remembered[damaged] = (remembered[damaged][0] + 7, False)
    blob_sizes.save(store_path(ws), remembered)
    remote.write("dags/d1/f001.py", b"# changed\n")
    remote.push()

    with pytest.raises(VerificationError, match="the listing said"):
        ws.sync_one(REPO)
    assert ws.path(REPO) == first  # the previous version keeps serving
    assert not path.exists()  # the fetch saw the real size and dropped the file

    assert ws.sync_one(REPO).changed
    assert tree_files(ws.path(REPO)) == {**FILES, "dags/d1/f001.py": b"# changed\n"}


BIG = b"".join(b"task_%04d = PythonOperator(task_id='t%04d')\n" % (i, i) for i in range(200))
CHANGED = BIG.replace(b"t0100'", b"t0100_renamed'")


def synced_then_changed(remote: GitRemote, tmp_path: Path) -> Workspace:
    """A cache holding ``dags/big.py``, whose next commit changes it a little: the server
    deltifies the new blob against the old one, which it thinks we hold (a thin pack)."""
    remote.write("dags/big.py", BIG)
    remote.push()
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    remote.write("dags/big.py", CHANGED)
    remote.push()
    return ws


def test_a_delta_on_a_blob_given_away_is_rebuilt_from_the_cache(
    remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    ws = synced_then_changed(remote, tmp_path)
    before = git_servers.daemon.requests(remote.bare.name)
    # the store gave the base away; the content store holds its bytes, which hash to the
    # base's id: one connection, as for any other new commit
    assert ws.sync_one(REPO).changed
    assert git_servers.daemon.requests(remote.bare.name) - before == 1
    assert (ws.path(REPO) / "dags/big.py").read_bytes() == CHANGED
    assert stored_blobs(ws) == 0


@pytest.mark.parametrize("damage", ["altered", "removed"])
def test_a_base_the_cache_lost_or_damaged_comes_from_the_remote(
    remote: GitRemote, git_servers: GitServers, tmp_path: Path, damage: str
) -> None:
    ws = synced_then_changed(remote, tmp_path)
    cached = ws.cache.layout.object_path(hashlib.sha256(BIG).hexdigest())
    if damage == "altered":  # same size, other bytes: only the blob id tells
        os.chmod(cached, 0o644)
        cached.write_bytes(BIG.replace(b"task_0007", b"task_0008"))
    else:
        cached.unlink()
    before = git_servers.daemon.requests(remote.bare.name)
    assert ws.sync_one(REPO).changed
    # the base is asked for by id on a second connection; the delta applies to the right
    # bytes, so the published file is the commit's
    assert git_servers.daemon.requests(remote.bare.name) - before == 2
    assert (ws.path(REPO) / "dags/big.py").read_bytes() == CHANGED
    assert tree_files(ws.path(REPO)) == {**FILES, "dags/big.py": CHANGED}


def test_the_cache_takes_the_fetchers_hashes_and_reads_nothing_back(
    remote: GitRemote, tmp_path: Path, cache_read_backs: list[Path]
) -> None:
    read_back = cache_read_backs
    ws = make_ws(remote, tmp_path)
    ws.sync_one(REPO)
    assert read_back == []  # each blob hashed once, in memory, when written
    assert tree_files(ws.path(REPO)) == FILES
    read_back.clear()
    report = ws.verify(REPO)  # the audit hashes every object: the fetcher's hashes held
    assert report.ok and report.bad == () and report.checked_objects == len(FILES)
