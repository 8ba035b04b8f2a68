"""The cache's guarantees under crashes, concurrency and gc, on the real file system."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dagfetch.cache import VersionCache, VersionRecord
from dagfetch.cache.publish import PlannedFile, Published, Staging, version_id_for
from dagfetch.errors import (
    UnsafePathError,
    VerificationError,
    VersionNotFoundError,
    VersionUnavailableError,
)
from dagfetch.manifest import load_manifest
from dagfetch.models import RemoteFile
from dagfetch.workspace import Workspace
from tests.checkout import ROOT


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    (remote / "lib").mkdir(parents=True)
    for i in range(20):
        (remote / f"dag_{i:02}.py").write_text(f"# dag {i}\n" * 50)
    (remote / "lib" / "utils.py").write_text("X = 1\n")
    return remote


@pytest.fixture
def manifest(tmp_path: Path, repo: Path) -> Path:
    path = tmp_path / "dagfetch.toml"
    path.write_text(f'[dag_repositories.r]\nurl = "{repo}"\nkeep_versions = 2\n')
    return path


def ws_for(manifest: Path, cache: Path) -> Workspace:
    return Workspace.from_manifest(manifest, cache_root=cache)


def version_dirs(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "r").iterdir() if p.name not in (".meta", "current"))


def run_child(manifest: Path, cache: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cache.syncproc", str(manifest), str(cache), "r", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_download_leaves_current_and_no_partial_version(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    ws = ws_for(manifest, cache)
    old = ws.sync_one("r").version_id
    for i in range(20):
        (repo / f"dag_{i:02}.py").write_text(f"# dag {i}, second version\n")
    marker = tmp_path / "started"
    child = run_child(manifest, cache, "--slow", str(marker))
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "child never started downloading"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert ws.cache.current_id("r") == old
    assert version_dirs(cache) == [old]
    leftovers = list(ws.cache.layout.staging("r").iterdir())
    assert leftovers, "the killed sync should have left its staging folder behind"
    # the kernel released the dead process's lock: the next sync neither waits nor fails
    started = time.monotonic()
    result = ws.sync_one("r")
    assert time.monotonic() - started < 10
    assert result.changed and result.version_id != old
    assert not any(ws.cache.layout.staging("r").iterdir())
    assert (ws.path("r") / "dag_03.py").read_text() == "# dag 3, second version\n"


def test_eight_processes_syncing_at_once_end_with_one_version(
    tmp_path: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    children = [run_child(manifest, cache) for _ in range(8)]
    outputs = [c.communicate(timeout=120) for c in children]
    assert all(c.returncode == 0 for c in children), outputs
    ids = {out.strip() for out, _ in outputs}
    assert len(ids) == 1
    (only,) = ids
    assert version_dirs(cache) == [only]
    ws = ws_for(manifest, cache)
    assert ws.cache.current_id("r") == only
    assert len(ws.versions("r")) == 1
    assert len(list(ws.path("r").rglob("*.py"))) == 21


def test_readers_resolve_current_once_and_keep_their_version(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    ws = ws_for(manifest, tmp_path / "cache")
    ws.sync_one("r")
    reader_path = ws.path("r")
    (repo / "dag_00.py").write_text("changed\n")
    ws.sync_one("r")
    assert reader_path != ws.path("r")
    assert (reader_path / "dag_00.py").read_text() == "# dag 0\n" * 50
    assert os.readlink(tmp_path / "cache" / "r" / "current") == ws.path("r").name


def test_gc_keeps_current_newest_and_pinned_and_drops_unused_objects(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    ws = ws_for(manifest, tmp_path / "cache")  # keep_versions = 2
    ids = []
    for n in range(4):
        (repo / "dag_00.py").write_text(f"version {n}\n")
        ids.append(ws.sync_one("r").version_id)
    ws.pin("r", ids[0], holder="run-1")
    report = ws.gc()
    assert report.evicted == (("r", ids[1]),)
    assert report.objects_removed == 1  # only version 1's dag_00.py was unique to it
    present = {e.version.version_id for e in ws.versions("r") if e.present}
    assert present == {ids[0], ids[2], ids[3]}
    with pytest.raises(VersionNotFoundError, match="evicted"):
        ws.cache.path("r", ids[1])
    # file:// keeps no history: the evicted version is reported, never silently wrong
    with pytest.raises(VersionUnavailableError, match="keeps no history"):
        ws.path("r", ids[1])
    # the pinned version survives and resolves with its own code
    assert (ws.path("r", ids[0]) / "dag_00.py").read_text() == "version 0\n"
    ws.unpin("r", ids[0], holder="run-1")
    assert ("r", ids[0]) in ws.gc().evicted


def test_gc_dry_run_removes_nothing(tmp_path: Path, repo: Path, manifest: Path) -> None:
    ws = ws_for(manifest, tmp_path / "cache")
    for n in range(3):
        (repo / "dag_00.py").write_text(f"v{n}\n")
        ws.sync_one("r")
    before = version_dirs(tmp_path / "cache")
    report = ws.gc(dry_run=True)
    assert len(report.evicted) == 1 and report.bytes_freed > 0
    assert version_dirs(tmp_path / "cache") == before


def test_an_unpublished_tree_is_removed_by_the_next_sync(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    ws = ws_for(manifest, tmp_path / "cache")
    good = ws.sync_one("r").version_id
    orphan = tmp_path / "cache" / "r" / "0123456789abcdef"
    orphan.mkdir()
    (orphan / "half.py").write_text("half")
    (repo / "dag_00.py").write_text("new\n")
    ws.sync_one("r")
    assert not orphan.exists()
    assert good in version_dirs(tmp_path / "cache")


def test_identical_files_are_stored_once_across_repositories(tmp_path: Path, repo: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(f'[dag_repositories.a]\nurl = "{repo}"\n[dag_repositories.b]\nurl = "{repo}"\n')
    ws = Workspace(load_manifest(path), cache_root=tmp_path / "cache")
    ws.sync()
    a, b = ws.path("a") / "lib" / "utils.py", ws.path("b") / "lib" / "utils.py"
    assert a.stat().st_ino == b.stat().st_ino


def test_copies_where_hard_links_are_refused(
    tmp_path: Path, repo: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    ws = ws_for(manifest, tmp_path / "cache")
    ws.sync_one("r")
    copied = ws.path("r") / "lib" / "utils.py"
    assert copied.read_text() == "X = 1\n"
    assert copied.stat().st_nlink == 1 and copied.stat().st_mode & 0o222 == 0


def test_a_touched_file_with_the_same_bytes_is_not_a_new_version(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    ws = ws_for(manifest, tmp_path / "cache")
    first = ws.sync_one("r")
    os.utime(repo / "dag_00.py", (1, 1))
    second = ws.sync_one("r")
    assert second.version_id == first.version_id and not second.changed
    third = ws.sync_one("r")
    assert third.downloaded == 0  # the new change token was remembered


def test_records_store_deltas_and_read_back_whole(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    import hashlib
    import json

    from dagfetch.cache.records import MAX_CHAIN

    ws = ws_for(manifest, tmp_path / "cache")
    ids = []
    for n in range(MAX_CHAIN + 3):
        (repo / f"dag_{n % 20:02}.py").write_text(f"generation {n}\n")
        if n == 5:
            (repo / "dag_19.py").unlink()
        ids.append(ws.sync_one("r").version_id)
    raw = [json.loads(ws.cache.layout.record("r", v).read_text()) for v in ids]
    assert [r["depth"] for r in raw] == [0, *range(1, MAX_CHAIN + 1), 0, 1]
    assert len(raw[3]["changed"]) == 1 and raw[5]["removed"] == ["dag_19.py"]
    ws.gc()  # evicts all but the newest 2: their records stay, flagged, as bases
    fresh = VersionCache(tmp_path / "cache")  # no memo: every chain is read from disk
    for version_id in ids[-2:]:
        version = fresh.get("r", version_id)
        on_disk = {
            p.relative_to(version.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(version.path).rglob("*")
            if p.is_file()
        }
        assert {f.path: f.sha256 for f in version.files} == on_disk
    evicted = fresh.record("r", ids[3])
    assert evicted is not None and evicted.evicted is True
    assert len(evicted.version.files) == 21


def test_gc_stores_idle_versions_and_rebuilds_them_offline(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    import shutil

    ws = ws_for(manifest, tmp_path / "cache")  # keep_versions = 2
    ids = []
    for n in range(3):
        (repo / "dag_00.py").write_text(f"version {n}\n")
        ids.append(ws.sync_one("r").version_id)
    ws.pin("r", ids[0], holder="run-1")
    # right after the switch, the retired version keeps its tree (readers may be inside it)
    assert ws.gc().stored == ()
    report = ws.gc(grace_seconds=0)
    assert report.stored == (("r", ids[1]),)  # ids[0] pinned, ids[2] current
    assert version_dirs(tmp_path / "cache") == sorted([ids[0], ids[2]])
    entry = {e.version.version_id: e for e in ws.versions("r")}[ids[1]]
    assert entry.present and not entry.materialized
    shutil.rmtree(repo)  # no remote: the rebuild uses local contents only
    path = ws.path("r", ids[1])
    assert (path / "dag_00.py").read_text() == "version 1\n"
    assert (path / "dag_00.py").stat().st_mode & 0o222 == 0
    assert (path / "lib" / "utils.py").stat().st_ino == (
        ws.path("r") / "lib" / "utils.py"
    ).stat().st_ino


@pytest.mark.parametrize("keep", [2, 1])  # 2: A is stored by gc; 1: A is evicted
def test_reverting_to_a_collected_version_keeps_records_readable(
    tmp_path: Path, repo: Path, manifest: Path, keep: int
) -> None:

    ws = ws_for(manifest, tmp_path / "cache")
    a = ws.sync_one("r").version_id
    (repo / "dag_00.py").write_text("B\n")
    b = ws.sync_one("r").version_id
    ws.cache.gc({"r": keep}, grace_seconds=0)
    (repo / "dag_00.py").write_text("# dag 0\n" * 50)  # back to A's content
    again = ws.sync_one("r")
    assert again.version_id == a
    (repo / "dag_00.py").write_text("C\n")
    ws.sync_one("r")
    fresh = VersionCache(tmp_path / "cache")  # no memo: chains are read from disk
    present = {e.version.version_id for e in fresh.versions("r") if e.present}
    assert a in present
    assert (fresh.path("r", a) / "dag_00.py").read_text() == "# dag 0\n" * 50
    assert b in {e.version.version_id for e in fresh.versions("r")}


def test_version_refetchable_is_recorded_and_history_is_its_alias(
    tmp_path: Path, manifest: Path
) -> None:
    import json

    ws = ws_for(manifest, tmp_path / "cache")
    version_id = ws.sync_one("r").version_id
    assert version_id is not None
    version = ws.cache.get("r", version_id)
    assert version.refetchable is False  # a plain folder keeps no history
    assert version.history is version.refetchable  # the 0.1.0 name still reads
    record = json.loads(ws.cache.layout.record("r", version_id).read_text())
    assert record["refetchable"] is False
    entry = ws.versions("r")[0]
    assert entry.refetchable is version.refetchable


# -- the seams of the cache: staging, verify, publish, records ------------------------------------


def _plan(staging: Staging, files: dict[str, bytes], **remote: Any) -> list[PlannedFile]:
    """Write ``files`` where a fetcher would, and plan them as downloads."""
    planned = []
    for path, data in files.items():
        dest = staging.downloads / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        listed = RemoteFile(path, remote.get("size", len(data)), f"t-{path}", remote.get("digest"))
        planned.append(PlannedFile(listed, downloaded=dest))
    return planned


def _publish(cache: VersionCache, files: dict[str, bytes]) -> Published:
    with cache.repo_lock("r"), cache.staging("r") as staging:
        verified = cache.verify(_plan(staging, files), backend_version=None)
        return cache.publish(
            staging, verified, source_url="test", fingerprint="", refetchable=False
        )


@pytest.mark.parametrize(
    ("remote", "problem"),
    [
        ({"size": 99}, "got 5 bytes, the listing said 99"),
        ({"digest": "sha256:" + "0" * 64}, "sha256 is"),
        ({"digest": "md5:" + "0" * 32}, "md5 is"),
    ],
)
def test_verify_refuses_a_download_unlike_its_listing_before_anything_is_published(
    tmp_path: Path, remote: dict[str, Any], problem: str
) -> None:
    cache = VersionCache(tmp_path / "cache")
    with cache.repo_lock("r"), cache.staging("r") as staging:
        planned = _plan(staging, {"ok.py": b"fine\n", "dag.py": b"evil\n"}, **remote)
        with pytest.raises(VerificationError, match=problem):
            cache.verify(planned, backend_version=None)
    assert not cache.layout.objects.exists()  # nothing was stored
    assert cache.all_records("r") == [] and cache.current_id("r") is None
    assert [p.name for p in cache.layout.repo("r").iterdir()] == [".meta"]


def test_verify_refuses_a_missing_download_and_a_link_out_of_the_version(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    with pytest.raises(VerificationError, match="did not write it"):
        cache.verify(
            [PlannedFile(RemoteFile("a.py", 1, "t"), downloaded=tmp_path / "never-written")],
            backend_version=None,
        )
    link = RemoteFile("lib/up", 0, "t", kind="symlink", target="../../etc/passwd")
    with pytest.raises(UnsafePathError, match="outside"):
        cache.verify([PlannedFile(link)], backend_version=None)
    assert not cache.root.exists()


def test_verify_names_the_version_by_backend_id_or_by_content(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    known = [PlannedFile(RemoteFile("a.py", 3, "t"), sha256="ab" * 32)]
    assert cache.verify(known, backend_version="commit1").version_id == "commit1"
    by_content = cache.verify(known, backend_version=None)
    assert by_content.version_id == version_id_for(by_content.files, None)
    moved = [PlannedFile(RemoteFile("b.py", 3, "t"), sha256="ab" * 32)]
    assert cache.verify(moved, backend_version=None).version_id != by_content.version_id


def test_staging_has_one_owner_that_removes_it_on_success_and_on_failure(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    area = cache.layout.staging("r")
    with cache.repo_lock("r"):
        with cache.staging("r") as staging:
            _plan(staging, {"a.py": b"a\n"})
            used = staging.path
            assert used.parent == area
        assert not used.exists()
        failed: list[Path] = []

        def sync_that_breaks() -> None:
            with cache.staging("r") as staging:
                _plan(staging, {"a.py": b"a\n"})
                failed.append(staging.path)
                raise RuntimeError("the fetcher broke")

        with pytest.raises(RuntimeError, match="broke"):
            sync_that_breaks()
        assert failed and not failed[0].exists()
        # what a killed sync leaves: its staging folder (read-only parts too) and a tree
        # renamed into place whose record was never written
        dead = area / "killed"
        (dead / "tree" / "sub").mkdir(parents=True)
        (dead / "tree" / "sub").chmod(0o555)
        orphan = cache.layout.repo("r") / "0123456789abcdef"
        orphan.mkdir()
        with cache.staging("r") as staging:
            assert not dead.exists() and not orphan.exists()
            assert list(area.iterdir()) == [staging.path]
    assert list(area.iterdir()) == []


def test_publish_renames_the_tree_out_of_staging_and_deletes_nothing_there(
    tmp_path: Path,
) -> None:
    cache = VersionCache(tmp_path / "cache")
    with cache.repo_lock("r"), cache.staging("r") as staging:
        planned = _plan(staging, {"a.py": b"a\n", "lib/b.py": b"b\n"})
        (staging.path / "fetcher-scratch").write_text("left for the owner")
        published = cache.publish(
            staging,
            cache.verify(planned, backend_version=None),
            source_url="test",
            fingerprint="f",
            refetchable=True,
        )
        assert published.new
        assert not staging.tree.exists()  # renamed into place
        assert (staging.path / "fetcher-scratch").exists()  # the owner removes it, not publish
    version = published.version
    assert (Path(version.path) / "lib" / "b.py").read_bytes() == b"b\n"
    assert os.stat(version.path).st_mode & 0o222 == 0
    assert cache.record("r", version.version_id) == VersionRecord(version, evicted=False)
    again = _publish(cache, {"a.py": b"a\n", "lib/b.py": b"b\n"})
    assert not again.new and again.version == version


def test_the_tree_holds_the_listed_files_only_whatever_the_fetcher_left_beside_them(
    tmp_path: Path,
) -> None:
    cache = VersionCache(tmp_path / "cache")
    kept = _publish(cache, {"lib/kept.py": b"kept\n"})  # its object is in the store already
    with cache.repo_lock("r"), cache.staging("r") as staging:
        planned = _plan(staging, {"a.py": b"a\n", "lib/b.py": b"b\n"})
        planned.append(PlannedFile(RemoteFile("lib/kept.py", 5, "t-kept"),
                                   sha256=kept.version.files[0].sha256))
        # what a careless fetcher leaves in its download folder, which is the tree
        (staging.downloads / "lib" / ".b.py.part").write_bytes(b"half")
        (staging.downloads / "scratch" / "empty").mkdir(parents=True)
        (staging.downloads / "lib" / "kept.py").write_bytes(b"not what the store holds")
        published = cache.publish(
            staging, cache.verify(planned, backend_version=None), source_url="test",
            fingerprint="f", refetchable=False,
        )
    tree = Path(published.version.path)
    found = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    assert found == ["a.py", "lib", "lib/b.py", "lib/kept.py"]
    assert (tree / "lib" / "kept.py").read_bytes() == b"kept\n"
    # each file is its object: hard links, read-only, the downloads too
    for name in ("a.py", "lib/b.py", "lib/kept.py"):
        st = (tree / name).stat()
        assert st.st_nlink == 3 if name == "lib/kept.py" else st.st_nlink == 2
        assert st.st_mode & 0o222 == 0


def test_a_download_equal_to_a_stored_object_becomes_a_link_to_it(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    first = _publish(cache, {"a.py": b"same\n"}).version
    second = _publish(cache, {"b.py": b"same\n"}).version
    one, other = Path(first.path) / "a.py", Path(second.path) / "b.py"
    assert os.path.samefile(one, other) and one.stat().st_nlink == 3  # stored once


def test_records_are_typed_values(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    first = _publish(cache, {"a.py": b"1\n"}).version
    cache.switch_current("r", first.version_id)
    second = _publish(cache, {"a.py": b"2\n"}).version
    cache.switch_current("r", second.version_id)
    cache.gc({"r": 1})
    records = cache.all_records("r")
    assert all(isinstance(r, VersionRecord) for r in records)
    assert [(r.version.version_id, r.evicted, r.present) for r in records] == [
        (second.version_id, False, True),
        (first.version_id, True, False),
    ]
    assert cache.record("r", "0" * 32) is None


def test_the_current_versions_files_are_read_back_by_token(
    tmp_path: Path, repo: Path, manifest: Path
) -> None:
    """What the core lends a fetcher rebuilding deltas: bytes by change token, None for a
    token it does not hold or an object of the wrong size (never a truncated copy)."""
    ws = ws_for(manifest, tmp_path / "cache")
    result = ws.sync_one("r")
    found = ws.cache.record("r", result.version_id)
    assert found is not None
    version = found.version
    read = ws.cache.objects.by_token(version)
    for f in version.files:
        same_token = {(repo / g.path).read_bytes() for g in version.files if g.token == f.token}
        assert read(f.token) in same_token
    assert read("no such token") is None
    assert ws.cache.objects.by_token(None)(version.files[0].token) is None

    target = version.files[0]
    stored = ws.cache.layout.object_path(target.sha256)
    os.chmod(stored, 0o644)
    stored.write_bytes(b"truncated")
    if all(g.sha256 == target.sha256 for g in version.files if g.token == target.token):
        assert ws.cache.objects.by_token(version)(target.token) is None
