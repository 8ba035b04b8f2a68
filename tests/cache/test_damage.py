"""A cache that was killed, damaged or left full: what is left is never served half, what
cannot be read is moved aside and rebuilt by syncing, and nothing ends in a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagfetch.cli import main
from dagfetch.errors import DagfetchError
from dagfetch.workspace import Workspace
from tests.checkout import ROOT

FILES = 300


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    (folder / "sub").mkdir(parents=True)
    for i in range(FILES):
        (folder / "sub" / f"dag_{i:03}.py").write_text(f"# dag {i}\n")
    return folder


@pytest.fixture
def manifest(tmp_path: Path, remote: Path) -> Path:
    path = tmp_path / "dagfetch.toml"
    path.write_text(f'[dag_repositories.r]\nurl = "{remote}"\nkeep_versions = 3\n')
    return path


def two_versions(manifest: Path, cache: Path, remote: Path) -> tuple[Workspace, str, str]:
    ws = Workspace.from_manifest(manifest, cache_root=cache)
    first = ws.sync_one("r").version_id
    (remote / "new.py").write_text("x = 2\n")
    second = ws.sync_one("r").version_id
    assert first and second and first != second
    return ws, first, second


def tree_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def cli(manifest: Path, cache: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-m", str(manifest), "--home", str(cache), *args])
    return result.exit_code, result.output + (
        "" if result.exception is None or isinstance(result.exception, SystemExit)
        else f"Traceback {result.exception!r}"
    )


# -- gc killed half-way ----------------------------------------------------------------------

@pytest.mark.parametrize("after", [3, 40, 150, 290])
def test_a_gc_killed_while_removing_a_tree_never_leaves_half_of_it_served_or_pinned(
    tmp_path: Path, remote: Path, manifest: Path, after: int
) -> None:
    cache = tmp_path / "cache"
    ws, first, _ = two_versions(manifest, cache, remote)
    child = subprocess.run(
        [sys.executable, "-m", "tests.cache.gcproc", str(cache), "3", str(after)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert child.returncode == -9, child.stderr  # killed inside the removal of first's tree
    served = ws.path("r", first)
    assert tree_files(served) == FILES, "a half-deleted tree was served"
    assert ws.pin("r", first, "run-1") == served
    assert tree_files(served) == FILES
    ws.gc(grace_seconds=0)  # pinned: kept whole
    assert tree_files(ws.path("r", first)) == FILES
    assert not any((cache / "r" / ".meta" / "trash").iterdir())


def test_an_unmarked_tree_is_adopted_when_whole_and_rebuilt_when_not(
    tmp_path: Path, remote: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    ws, first, _ = two_versions(manifest, cache, remote)
    marker = cache / "r" / ".meta" / "trees" / first
    tree = cache / "r" / first
    inode = tree.stat().st_ino
    marker.unlink()  # a cache written before markers: the tree is whole
    assert ws.path("r", first) == tree and tree.stat().st_ino == inode and marker.exists()
    marker.unlink()  # as a 0.1.0 gc killed in its recursive delete leaves it
    os.chmod(tree / "sub", 0o700)
    for i in range(0, FILES, 2):
        (tree / "sub" / f"dag_{i:03}.py").unlink()
    assert tree_files(ws.path("r", first)) == FILES


def test_temporary_files_of_killed_metadata_writes_are_removed_by_the_next_sync_and_gc(
    tmp_path: Path, remote: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    ws, first, _ = two_versions(manifest, cache, remote)
    meta = cache / "r" / ".meta"
    leftovers = [meta / "versions" / f".{first}.json.k2j3h4", meta / ".state.json.zz9x8"]
    for path in leftovers:
        path.write_text('{"half": ')
    ws.sync_one("r")
    assert not any(p.exists() for p in leftovers)
    for path in leftovers:
        path.write_text('{"half": ')
    ws.gc()
    assert not any(p.exists() for p in leftovers)


# -- damaged metadata --------------------------------------------------------------------------

@pytest.mark.parametrize("damage", [
    "not json {",
    '["a", "list"]',
    '{"format": 2, "files": 3}',
    '{"format": 2, "repo_id": "r", "version_id": "%s", "source_url": 1, "fetched_at": "x"}',
    '{"format": 2, "repo_id": "r", "version_id": "%s", "source_url": "s", '
    '"fetched_at": "2026-01-01T00:00:00+00:00", "base": "0000"}',
])
def test_an_unreadable_record_of_the_current_version_is_quarantined_and_rebuilt(
    tmp_path: Path, remote: Path, manifest: Path, damage: str
) -> None:
    cache = tmp_path / "cache"
    ws, _, second = two_versions(manifest, cache, remote)
    record = cache / "r" / ".meta" / "versions" / f"{second}.json"
    record.write_text(damage.replace("%s", second))
    for command in (["status"], ["versions", "r"], ["gc", "--dry-run"], ["status", "--json"]):
        code, out = cli(manifest, cache, *command)
        assert code == 0 and "Traceback" not in out, (command, out)
    assert any((cache / "r" / ".meta" / "quarantine").iterdir())
    result = ws.sync_one("r")
    assert result.version_id == second and ws.current("r") is not None
    assert tree_files(ws.path("r")) == FILES + 1
    code, out = cli(manifest, cache, "gc")
    assert code == 0, out


@pytest.mark.parametrize("name", [".json", "not a version.json", "current.json"])
def test_a_record_file_named_by_no_version_id_is_quarantined_not_fatal(
    tmp_path: Path, remote: Path, manifest: Path, name: str
) -> None:
    cache = tmp_path / "cache"
    ws, _, second = two_versions(manifest, cache, remote)
    (cache / "r" / ".meta" / "versions" / name).write_text("{}")
    for command in (["status"], ["versions", "r"], ["gc", "--dry-run"]):
        code, out = cli(manifest, cache, *command)
        assert code == 0 and "Traceback" not in out, (command, out)
    assert not (cache / "r" / ".meta" / "versions" / name).exists()
    assert ws.sync_one("r").version_id == second


@pytest.mark.parametrize("state", [
    "garbage{", "[1, 2]", '{"retired": [1, 2], "last_error": "boom", "last_check_at": 5}',
    '{"retired": {"x": "soon"}, "became_current": {"y": null}}',
])
def test_a_corrupt_or_wrong_typed_state_never_fails_a_sync_after_it_switched(
    tmp_path: Path, remote: Path, manifest: Path, state: str
) -> None:
    cache = tmp_path / "cache"
    ws, _, second = two_versions(manifest, cache, remote)
    (cache / "r" / ".meta" / "state.json").write_text(state)
    (remote / "third.py").write_text("x = 3\n")
    result = ws.sync_one("r")  # switches current, then records the old one as retired
    assert result.ok and result.version_id != second
    assert ws.cache.current_id("r") == result.version_id
    for command in (["status"], ["versions", "r"], ["gc"]):
        code, out = cli(manifest, cache, *command)
        assert code == 0 and "Traceback" not in out, (command, out)


@pytest.mark.parametrize("target", ["0" * 32, "../../etc"])
def test_current_naming_a_missing_version_is_rebuilt_by_the_next_sync(
    tmp_path: Path, remote: Path, manifest: Path, target: str
) -> None:
    cache = tmp_path / "cache"
    ws, _, second = two_versions(manifest, cache, remote)
    link = cache / "r" / "current"
    link.unlink()
    link.symlink_to(target)
    # and the record of the version it named before is unreadable: rebuilt from scratch
    (cache / "r" / ".meta" / "versions" / f"{second}.json").write_text("{")
    code, out = cli(manifest, cache, "status")
    assert code == 0 and "Traceback" not in out
    assert ws.sync_one("r").version_id == second
    assert tree_files(ws.path("r")) == FILES + 1


# -- a failure to record the failure -------------------------------------------------------------

def test_a_full_disk_on_the_error_path_is_a_dagfetch_error_and_current_stays(
    tmp_path: Path, remote: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    ws, _, second = two_versions(manifest, cache, remote)
    (remote / "third.py").write_text("x = 3\n")
    full = OSError(28, "No space left on device", str(cache / "r" / ".meta" / "state.json"))

    def no_space(*args: object, **kwargs: object) -> None:
        raise full

    monkeypatch.setattr(ws.cache.records, "update_state", no_space)
    monkeypatch.setattr(ws.cache, "publish", no_space)
    with pytest.raises(DagfetchError, match="No space left"):
        ws.sync_one("r")
    assert ws.cache.current_id("r") == second
    monkeypatch.undo()
    # and a switch whose bookkeeping cannot be written is still a successful sync
    monkeypatch.setattr(ws.cache.records, "update_state", no_space)
    result = ws.sync_one("r")
    assert result.ok and ws.cache.current_id("r") == result.version_id != second


# -- errors that stopped too much ----------------------------------------------------------------

def test_one_repository_whose_fetcher_cannot_be_built_does_not_stop_the_others(
    tmp_path: Path, remote: Path
) -> None:
    pytest.importorskip("adlfs")
    (tmp_path / "connections.toml").write_text(
        '[bad_az]\nconn_type = "wasb"\nextra = { connection_string = "not a connection string" }\n'
    )
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(
        'connections_file = "connections.toml"\n'
        '[dag_repositories.az]\nurl = "az://container/dags"\nconn_id = "bad_az"\n'
        f'[dag_repositories.ok]\nurl = "{remote}"\n'
    )
    code, out = cli(manifest, tmp_path / "cache", "sync", "--json")
    assert code == 1 and "Traceback" not in out
    results = {r["repo_id"]: r for r in json.loads(out[out.index("["):])}
    assert results["az"]["error"] and "malformed" in results["az"]["error"]
    assert results["ok"]["error"] is None and results["ok"]["version_id"]


def test_a_cache_root_that_cannot_be_written_is_one_line_and_exit_4(
    tmp_path: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(cache)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs: {mounted.stderr!r}")
    else:
        cache.chmod(0o500)
    try:
        code, out = cli(manifest, cache, "sync")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(cache)], check=True)
        else:
            cache.chmod(0o700)
    assert code == 4, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and str(cache) in lines[0] and "Traceback" not in out, out
