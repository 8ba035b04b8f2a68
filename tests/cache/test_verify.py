"""Damaged contents: never reused, found by `dagfetch verify`, removed and fetched again by
`--repair`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagfetch.cli import main
from dagfetch.workspace import Workspace


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "shared.py").write_text("SHARED = 'all versions use me'\n" * 20)
    (folder / "etl.py").write_text("x = 1\n")
    return folder


@pytest.fixture
def manifest(tmp_path: Path, remote: Path) -> Path:
    path = tmp_path / "dagfetch.toml"
    path.write_text(f'[dag_repositories.r]\nurl = "{remote}"\nkeep_versions = 5\n')
    return path


def object_of(ws: Workspace, path: str) -> Path:
    current = ws.current("r")
    assert current is not None
    sha = next(f.sha256 for f in current.files if f.path == path)
    return ws.cache.layout.object_path(sha)


def damage(obj: Path, *, truncate: bool) -> None:
    os.chmod(obj, 0o600)
    data = obj.read_bytes()
    obj.write_bytes(data[:5] if truncate else bytes([data[0] ^ 1]) + data[1:])


def cli(manifest: Path, cache: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["-m", str(manifest), "--home", str(cache), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout  # warnings go to stderr, the report to stdout


def test_a_truncated_object_is_not_linked_into_the_next_version(
    tmp_path: Path, remote: Path, manifest: Path
) -> None:
    ws = Workspace.from_manifest(manifest, cache_root=tmp_path / "cache")
    ws.sync_one("r")
    damage(object_of(ws, "lib/shared.py"), truncate=True)
    (remote / "etl.py").write_text("x = 2\n")
    result = ws.sync_one("r")
    assert result.downloaded == 2  # shared.py fetched again, not reused
    assert (ws.path("r") / "lib" / "shared.py").read_text() == (
        remote / "lib" / "shared.py"
    ).read_text()


def test_verify_names_each_bad_file_and_repair_fetches_current_again_and_drops_the_rest(
    tmp_path: Path, remote: Path, manifest: Path
) -> None:
    cache = tmp_path / "cache"
    ws = Workspace.from_manifest(manifest, cache_root=cache)
    old = ws.sync_one("r").version_id
    (remote / "etl.py").write_text("x = 2\n")
    new = ws.sync_one("r").version_id
    assert old and new
    code, out = cli(manifest, cache, "verify")
    assert code == 0 and "0 bad files" in out
    damage(object_of(ws, "lib/shared.py"), truncate=False)  # same size: only a hash sees it
    code, out = cli(manifest, cache, "verify", "r")
    assert code == 1
    assert f"BAD r {new} lib/shared.py: its content hashes to" in out
    assert f"BAD r {old} lib/shared.py" in out
    code, out = cli(manifest, cache, "verify", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert {(b["repo_id"], b["version_id"], b["path"]) for b in report["bad"]} == {
        ("r", new, "lib/shared.py"), ("r", old, "lib/shared.py")}
    code, out = cli(manifest, cache, "verify", "--repair", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"], out
    assert report["repaired"] == [["r", new]]
    assert report["dropped"] == [["r", old]]  # a folder remote keeps no history
    assert (ws.path("r") / "lib" / "shared.py").read_text() == (
        remote / "lib" / "shared.py").read_text()
    assert ws.verify().bad == ()
    assert [e.present for e in ws.versions("r")] == [True, False]
