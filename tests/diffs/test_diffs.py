"""``Workspace.diff`` (dagfetch.diffs) on real synced versions: which files were added,
deleted, modified and renamed, the hunks of text files, binary files, limits, stored and
evicted versions, and the patch checked by ``git apply`` itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dagfetch.diffs import DiffLimits, changed_files, is_binary, line_hunks, split_lines
from dagfetch.errors import VersionNotFoundError
from dagfetch.models import CachedFile
from dagfetch.testing import LocalRemote
from dagfetch.testing.workspace import one_repository
from dagfetch.workspace import Workspace

FIRST = {
    "dags/etl.py": b"".join(b"v%d = %d\n" % (n, n) for n in range(1, 13)),
    "dags/old.py": b"print('old')\n",
    "lib/moved.py": b"MOVED = True\n",
    "README.md": b"# readme\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00first",
    "no_eol.txt": b"last line",
}


def two_versions(root: Path) -> tuple[Workspace, LocalRemote, str, str]:
    remote = LocalRemote(root / "remote")
    for path, data in FIRST.items():
        remote.write(path, data)
    workspace = one_repository(remote, root, keep_versions=5)
    old = workspace.sync_one("r").version_id
    remote.write("dags/etl.py", FIRST["dags/etl.py"].replace(b"v3 = 3", b"v3 = 30")
                 + b"v13 = 13\n")
    remote.delete("dags/old.py")
    remote.write("dags/new.py", b"print('new')\n")
    remote.delete("lib/moved.py")
    remote.write("lib/renamed.py", b"MOVED = True\n")
    remote.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00second")
    remote.write("no_eol.txt", b"last line\nand another")
    new = workspace.sync_one("r").version_id
    assert old and new and old != new
    return workspace, remote, old, new


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Workspace, LocalRemote, str, str]:
    return two_versions(tmp_path)


def test_files_added_deleted_modified_and_renamed(
        versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    diff = workspace.diff("r", old, new)
    assert (diff.old_version, diff.new_version) == (old, new)
    assert [f.path for f in diff.added] == ["dags/new.py"]
    assert [f.path for f in diff.deleted] == ["dags/old.py"]
    assert [f.path for f in diff.modified] == ["dags/etl.py", "logo.png", "no_eol.txt"]
    assert [(f.old_path, f.path) for f in diff.renamed] == [("lib/moved.py", "lib/renamed.py")]
    assert [f.path for f in diff.files] == sorted(f.path for f in diff.files)
    assert workspace.diff("r", new, new).empty


def test_hunks_of_a_changed_text_file(versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    etl = {f.path: f for f in workspace.diff("r", old, new).files}["dags/etl.py"]
    assert (etl.insertions, etl.deletions) == (2, 1)
    [first, second] = etl.hunks  # the two changes are more than 2 x 3 lines apart
    assert first.header == "@@ -1,6 +1,6 @@"
    assert [(line.kind, line.text) for line in first.lines if line.kind != "context"] == [
        ("deleted", "v3 = 3"), ("added", "v3 = 30")]
    assert [(line.old_number, line.new_number) for line in first.lines[2:4]] == [
        (3, None), (None, 3)]
    assert second.header == "@@ -10,3 +10,4 @@"
    assert second.lines[-1].text == "v13 = 13" and second.lines[-1].new_number == 13


def test_binary_files_have_no_lines(versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    logo = {f.path: f for f in workspace.diff("r", old, new).files}["logo.png"]
    assert logo.binary and logo.hunks == () and logo.insertions is None
    assert "Binary files a/logo.png and b/logo.png differ" in workspace.diff(
        "r", old, new).patch_text()


def test_without_the_patch_no_content_is_read(
        versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    shutil.rmtree(workspace.path("r", old, fetch=False), ignore_errors=True)
    diff = workspace.diff("r", old, new, patch=False)
    assert len(diff.files) == 6
    assert all(f.hunks == () and f.insertions is None for f in diff.files)


def test_the_patch_applies_with_git(versions: tuple[Workspace, LocalRemote, str, str],
                                    tmp_path: Path) -> None:
    workspace, _, old, new = versions
    checkout = tmp_path / "checkout"
    shutil.copytree(workspace.path("r", old), checkout)
    (checkout / "logo.png").unlink()  # git applies no binary patch without full index lines
    patch = workspace.diff("r", old, new).patch_text().replace(
        "diff --git a/logo.png b/logo.png\nBinary files a/logo.png and b/logo.png differ\n", "")
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "apply", "--whitespace=nowarn", "-"],
                   input=patch.encode(), check=True)
    newer = workspace.path("r", new)
    for path in ("dags/etl.py", "dags/new.py", "lib/renamed.py", "no_eol.txt"):
        assert (checkout / path).read_bytes() == (newer / path).read_bytes(), path
    assert not (checkout / "dags/old.py").exists()
    assert not (checkout / "lib/moved.py").exists()
    assert "\\ No newline at end of file" in patch


def test_stat_and_summary(versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    diff = workspace.diff("r", old, new)
    stat = diff.stat_text().splitlines()
    assert stat[-1] == " 6 files changed, 5 insertions(+), 3 deletions(-)"
    assert any(line.startswith(" dags/etl.py") and line.endswith("| 3 ++-") for line in stat)
    assert any("logo.png" in line and "Bin 15 -> 16 bytes" in line for line in stat)
    summary = diff.summary_text()
    assert summary.endswith("files summary: 1 added, 1 deleted, 3 modified, 1 renamed")
    assert "    lib/moved.py -> lib/renamed.py" in summary


def test_json_shape(versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    document = workspace.diff("r", old, new).to_json()
    assert document["added"] == [{"path": "dags/new.py"}]
    assert document["renamed"] == [{"path": {"old": "lib/moved.py", "new": "lib/renamed.py"}}]
    files = {f["path"]: f for f in document["files"]}
    assert files["dags/etl.py"]["insertions"] == 2
    assert files["dags/etl.py"]["hunks"][0]["lines"][2] == {
        "kind": "deleted", "old_number": 3, "new_number": None, "text": "v3 = 3", "eol": True}


def test_versions_by_prefix_and_current(
        versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    assert workspace.diff("r", old[:6]).new_version == new  # B defaults to current
    assert workspace.diff("r", old[:6], "current").old_version == old


@pytest.mark.parametrize(("ref", "says"), [
    ("ffffffffff", "no version 'ffffffffff'"),
    ("abc", "no version 'abc'"),
])
def test_unknown_versions_are_a_clear_error(
        versions: tuple[Workspace, LocalRemote, str, str], ref: str, says: str) -> None:
    workspace, _, old, _ = versions
    with pytest.raises(VersionNotFoundError, match=says) as caught:
        workspace.diff("r", ref)
    assert "dagfetch versions r" in str(caught.value)
    with pytest.raises(VersionNotFoundError):
        workspace.diff("r", old, ref)


def test_a_too_short_prefix_is_refused_even_when_unique(
        versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, _ = versions
    with pytest.raises(VersionNotFoundError, match="at least 4 characters"):
        workspace.diff("r", old[:3])


def test_nothing_synced_yet(tmp_path: Path) -> None:
    workspace = one_repository(LocalRemote(tmp_path / "remote"), tmp_path)
    with pytest.raises(VersionNotFoundError, match="nothing synced yet"):
        workspace.diff("r", "current", "current")


def test_limits_skip_large_files_with_a_reason(
        versions: tuple[Workspace, LocalRemote, str, str]) -> None:
    workspace, _, old, new = versions
    diff = workspace.diff("r", old, new, limits=DiffLimits(max_file_bytes=20))
    etl = {f.path: f for f in diff.files}["dags/etl.py"]
    assert etl.hunks == () and etl.skipped == "not shown: larger than 0 KiB"
    assert "# not shown" in diff.patch_text()
    small = {f.path: f for f in diff.files}["dags/new.py"]
    assert small.insertions == 1


def test_a_stored_version_is_read_from_the_content_store(tmp_path: Path) -> None:
    workspace, _, old, new = two_versions(tmp_path)
    remote2 = tmp_path / "remote" / "dags" / "third.py"
    remote2.write_text("third = 3\n")
    workspace.sync_one("r")
    workspace.pin("r", new, holder="keep")
    report = workspace.gc(grace_seconds=0)
    assert ("r", old) in report.stored or ("r", new) in report.stored
    stored = next(version_id for repo, version_id in report.stored)
    tree = workspace.cache.layout.version("r", stored)
    assert not tree.exists()
    diff = workspace.diff("r", old, new)
    etl = {f.path: f for f in diff.files}["dags/etl.py"]
    assert (etl.insertions, etl.deletions) == (2, 1)
    assert not tree.exists()  # read from the content store: nothing was written


def test_an_evicted_version_is_compared_from_its_record(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    remote.write("a.py", b"a = 1\n")
    workspace = one_repository(remote, tmp_path, keep_versions=1)
    first = workspace.sync_one("r").version_id
    remote.write("a.py", b"a = 2\n")
    second = workspace.sync_one("r").version_id
    assert first and second
    assert ("r", first) in workspace.gc(grace_seconds=0).evicted
    diff = workspace.diff("r", first, second)
    [changed] = diff.modified
    assert changed.path == "a.py"
    assert changed.skipped == "content not in the cache (the version was evicted)"


def file(path: str, sha: str, kind: str = "file", target: str | None = None) -> CachedFile:
    return CachedFile(path=path, size=1, token=sha, sha256=sha, kind=kind,  # type: ignore[arg-type]
                      target=target)


def test_changed_files_from_records_alone() -> None:
    old = [file("a", "1"), file("b", "2"), file("link", "x", "symlink", "a"),
           file("same", "9"), file("twin1", "7"), file("twin2", "7")]
    new = [file("a", "1"), file("b", "3"), file("link", "x", "symlink", "b"),
           file("same", "9"), file("moved", "7")]
    changes = {f.path: (f.status, f.old_path) for f in changed_files(old, new)}
    assert changes == {"b": ("modified", None), "link": ("modified", None),
                       "moved": ("renamed", "twin1"), "twin2": ("deleted", None)}


def test_lines_as_git_counts_them() -> None:
    assert split_lines("a\r\nb\x0cc\n") == ["a\r\n", "b\x0cc\n"]
    assert split_lines("") == [] and split_lines("x") == ["x"]
    assert is_binary(b"text\x00more") and is_binary(b"\xff\xfe") and not is_binary(b"caf\xc3\xa9")
    [hunk] = line_hunks("", "one\ntwo")
    assert hunk.header == "@@ -0,0 +1,2 @@" and hunk.lines[-1].eol is False
