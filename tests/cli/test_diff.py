"""``dagfetch diff REPO A [B]`` run through click as a user would: the summary, ``--stat``,
``--patch``, ``--json`` and the errors (exit codes as docs/cli.md gives them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagfetch.cli import main
from dagfetch.cli.app import EXIT_CONFIG, EXIT_NOT_FOUND
from tests.cli.test_cli import assert_documented


@pytest.fixture
def two(tmp_path: Path) -> tuple[list[str], str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "etl.py").write_text("a = 1\nb = 2\n")
    (repo / "gone.py").write_text("gone = True\n")
    (repo / "blob.bin").write_bytes(b"\x00one")
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.r]\nurl = "{repo}"\nkeep_versions = 3\n')
    base = ["--manifest", str(manifest), "--home", str(tmp_path / "home")]
    first = json.loads(run([*base, "sync", "--json"]).output)[0]["version_id"]
    (repo / "etl.py").write_text("a = 1\nb = 3\n")
    (repo / "gone.py").unlink()
    (repo / "added.py").write_text("new = 1\n")
    (repo / "blob.bin").write_bytes(b"\x00two!")
    second = json.loads(run([*base, "sync", "--json"]).output)[0]["version_id"]
    return base, first, second


def run(args: list[str], code: int = 0) -> Result:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_the_summary_names_each_file(two: tuple[list[str], str, str]) -> None:
    base, first, _ = two
    out = run([*base, "diff", "r", first]).output
    assert out == ("Added:\n    added.py\n\nDeleted:\n    gone.py\n\nModified:\n"
                   "    blob.bin\n    etl.py\n\nfiles summary: 1 added, 1 deleted, 2 modified\n")


def test_stat(two: tuple[list[str], str, str]) -> None:
    base, first, second = two
    lines = run([*base, "diff", "r", first[:6], second, "--stat"]).output.splitlines()
    assert lines == [
        " added.py | 1 +",
        " blob.bin | Bin 4 -> 5 bytes",
        " etl.py   | 2 +-",
        " gone.py  | 1 -",
        " 4 files changed, 2 insertions(+), 2 deletions(-)",
    ]


def test_patch(two: tuple[list[str], str, str]) -> None:
    base, first, _ = two
    out = run([*base, "diff", "r", first, "--patch"]).output
    assert "diff --git a/etl.py b/etl.py\n--- a/etl.py\n+++ b/etl.py\n@@ -1,2 +1,2 @@\n" \
           " a = 1\n-b = 2\n+b = 3\n" in out
    assert "new file mode 100644\n--- /dev/null\n+++ b/added.py\n@@ -0,0 +1 @@\n+new = 1\n" in out
    assert "Binary files a/blob.bin and b/blob.bin differ" in out


def test_json(two: tuple[list[str], str, str]) -> None:
    base, first, second = two
    document = json.loads(run([*base, "diff", "r", first, "--json"]).output)
    assert_documented("diff", document)
    assert (document["old_version"], document["new_version"]) == (first, second)
    assert document["added"] == [{"path": "added.py"}]
    assert document["deleted"] == [{"path": "gone.py"}]
    assert document["modified"] == [{"path": "blob.bin"}, {"path": "etl.py"}]
    assert all(f["hunks"] == [] for f in document["files"])  # no content without --patch
    patched = json.loads(run([*base, "diff", "r", first, "--patch", "--json"]).output)
    etl = next(f for f in patched["files"] if f["path"] == "etl.py")
    assert (etl["insertions"], etl["deletions"], len(etl["hunks"])) == (1, 1, 1)


def test_the_same_version_twice(two: tuple[list[str], str, str]) -> None:
    base, _, second = two
    assert run([*base, "diff", "r", second, "current"]).output == (
        "files summary: 0 added, 0 deleted, 0 modified\n")


@pytest.mark.parametrize(("args", "code", "says"), [
    (["r", "ffffffff"], EXIT_NOT_FOUND, "r: no version 'ffffffff'; `dagfetch versions r` lists"),
    (["r", "current", "0000"], EXIT_NOT_FOUND, "r: no version '0000'"),
    (["nope", "current"], EXIT_CONFIG, "no repository 'nope' (known: r)"),
])
def test_unknown_versions_and_repositories_are_clear_errors(
        two: tuple[list[str], str, str], args: list[str], code: int, says: str) -> None:
    base, _, _ = two
    result = CliRunner().invoke(main, [*base, "diff", *args])
    assert result.exit_code == code
    assert says in result.output
    assert "Traceback" not in result.output


def test_a_too_short_prefix(two: tuple[list[str], str, str]) -> None:
    base, first, _ = two
    result = CliRunner().invoke(main, [*base, "diff", "r", first[:2]])
    assert result.exit_code == EXIT_NOT_FOUND
    assert "give at least 4 characters of an id" in result.output
