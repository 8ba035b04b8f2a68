"""A check for changes reads the current version's record on every sync; a long-lived process
reads the file again only when it was replaced (by this process or another), so its check does
not grow with the version's size, and never answers with what a replaced file said."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.cache import records
from dagfetch.manifest import load_manifest
from dagfetch.workspace import Workspace


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every metadata file parsed by the record store."""
    parsed: list[Path] = []
    real = records.read_json

    def counting(path: Path) -> object:
        parsed.append(path)
        return real(path)

    monkeypatch.setattr(records, "read_json", counting)
    return parsed


def workspace(tmp_path: Path, source: Path) -> Workspace:
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.r]\nurl = "{source.as_uri()}"\n')
    return Workspace(load_manifest(manifest), cache_root=tmp_path / "cache")


def record_reads(parsed: list[Path]) -> int:
    return sum(1 for path in parsed if path.parent.name == "versions")


def test_no_change_checks_read_the_record_once(tmp_path: Path, reads: list[Path]) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for i in range(30):
        (source / f"dag_{i}.py").write_text(f"X = {i}\n")
    ws = workspace(tmp_path, source)
    ws.sync_one("r")
    reads.clear()
    for _ in range(3):
        assert not ws.sync_one("r").changed
    assert record_reads(reads) == 1


def synced_once(tmp_path: Path) -> tuple[Workspace, str]:
    """A workspace of one synced version whose record has been read (so it is memoized)."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "dag.py").write_text("X = 1\n")
    ws = workspace(tmp_path, source)
    version_id = ws.sync_one("r").version_id or ""
    assert ws.cache.record("r", version_id) is not None
    return ws, version_id


def test_a_record_replaced_by_another_process_is_read_again(
    tmp_path: Path, reads: list[Path]
) -> None:
    ws, version_id = synced_once(tmp_path)
    # another process's store marks it evicted: a new file under the same name
    other = workspace(tmp_path, tmp_path / "source")
    other.cache.records.mark_evicted("r", version_id)
    reads.clear()
    found = ws.cache.record("r", version_id)
    assert found is not None and found.evicted
    assert record_reads(reads) == 1


def test_a_removed_record_is_gone_from_the_memo(tmp_path: Path) -> None:
    ws, version_id = synced_once(tmp_path)
    ws.cache.layout.record("r", version_id).unlink()
    assert ws.cache.record("r", version_id) is None
