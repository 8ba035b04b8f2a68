"""Every bad manifest field fails before any fetch, naming the field's dotted path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import ManifestError
from dagfetch.manifest import load_manifest, parse_duration, parse_manifest
from dagfetch.workspace import Workspace


def repo(**fields: Any) -> dict[str, Any]:
    return {"dag_repositories": {"repo1": {"url": "s3://bucket/dags", **fields}}}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ([], "", "table"),
        ({}, "dag_repositories", "missing"),
        ({"dag_repositories": {}}, "dag_repositories", "empty"),
        ({"dag_repositories": [], "x": 1}, "x", "unknown key"),
        ({"dag_repositories": ["a"]}, "dag_repositories", "table keyed"),
        (
            {"dag_repositories": {"../evil": {"url": "s3://b"}}},
            "dag_repositories.../evil",
            "folder",
        ),
        (
            {"dag_repositories": {".hidden": {"url": "s3://b"}}},
            "dag_repositories..hidden",
            "folder",
        ),
        (
            {"dag_repositories": {"a": {"url": "s3://b"}, "A": {"url": "s3://c"}}},
            "dag_repositories.A",
            "case-insensitive",
        ),
        ({"dag_repositories": {"r": "s3://b"}}, "dag_repositories.r", "table"),
        (repo(colour="red"), "dag_repositories.repo1.colour", "unknown key"),
        ({"dag_repositories": {"repo1": {}}}, "dag_repositories.repo1.url", "missing"),
        (repo(url=""), "dag_repositories.repo1.url", "missing or empty"),
        (repo(url="s3:bucket"), "dag_repositories.repo1.url", "'//'"),
        (repo(url="s 3://bucket"), "dag_repositories.repo1.url", "not a valid URL scheme"),
        (repo(url="s3://"), "dag_repositories.repo1.url", "nothing after"),
        (repo(conn_id="bad id!"), "dag_repositories.repo1.conn_id", "connection id"),
        (repo(ref=""), "dag_repositories.repo1.ref", "non-empty"),
        (repo(subdir="../up"), "dag_repositories.repo1.subdir", "'..'"),
        (repo(subdir="/abs"), "dag_repositories.repo1.subdir", "absolute"),
        (repo(include="*.py", exclude=[1]), "dag_repositories.repo1.exclude", "glob"),
        (repo(refresh_interval="soon"), "dag_repositories.repo1.refresh_interval", "duration"),
        (repo(refresh_interval=0), "dag_repositories.repo1.refresh_interval", "positive"),
        (repo(keep_versions=0), "dag_repositories.repo1.keep_versions", ">= 1"),
        (repo(keep_versions=True), "dag_repositories.repo1.keep_versions", "whole number"),
        (repo(immutable="yes"), "dag_repositories.repo1.immutable", "true or false"),
        (repo(options=[]), "dag_repositories.repo1.options", "table"),
        ({**repo(), "scheme_providers": {"s3": 1}}, "scheme_providers", "distribution"),
        ({**repo(), "database": 5}, "database", "SQLAlchemy URL"),
    ],
)
def test_bad_field_is_named(data: Any, field: str, words: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, source="m.toml")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"m.toml: {field}")


def test_unknown_scheme_is_named_before_any_fetch(tmp_path: Path) -> None:
    manifest = parse_manifest(
        {"dag_repositories": {"ok": {"url": str(tmp_path)}, "repo2": {"url": "nope://x/y"}}}
    )
    ws = Workspace(manifest, cache_root=tmp_path / "cache")
    with pytest.raises(ManifestError) as caught:
        ws.sync()
    message = str(caught.value)
    assert message.startswith("dag_repositories.repo2.url: no fetcher for URL scheme 'nope'")
    assert "file" in message and "s3" in message  # the known schemes are listed
    assert not (tmp_path / "cache" / "ok").exists()  # validation came before any fetch


def test_unresolvable_conn_id_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGFETCH_CONN_MISSING_ONE", raising=False)
    manifest = parse_manifest(
        {"dag_repositories": {"r": {"url": str(tmp_path), "conn_id": "missing-one"}}}
    )
    with pytest.raises(ManifestError) as caught:
        Workspace(manifest, cache_root=tmp_path / "c").validate()
    assert "dag_repositories.r.conn_id" in str(caught.value)
    assert "DAGFETCH_CONN_MISSING_ONE" in str(caught.value)


def test_toml_and_json_give_the_same_manifest(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(
        '[dag_repositories.repo1]\nurl = "s3://my-bucket/dags"\nconn_id = "aws_default"\n'
        'include = ["*.py"]\nrefresh_interval = "5m"\nkeep_versions = 2\n'
    )
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "dag_repositories": {
                    "repo1": {
                        "url": "s3://my-bucket/dags",
                        "conn_id": "aws_default",
                        "include": ["*.py"],
                        "refresh_interval": 300,
                        "keep_versions": 2,
                    }
                }
            }
        )
    )
    a, b = load_manifest(tmp_path / "m.toml"), load_manifest(tmp_path / "m.json")
    assert a.repositories == b.repositories
    assert a.repositories[0].refresh_interval == 300.0


def test_relative_paths_resolve_against_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "repos" / "a").mkdir(parents=True)
    (tmp_path / "m.toml").write_text('[dag_repositories.a]\nurl = "repos/a"\n')
    spec = load_manifest(tmp_path / "m.toml").get("a")
    assert spec.url == (tmp_path / "repos" / "a").resolve().as_uri().replace("file:///", "file:///")
    assert spec.scheme == "file"


def test_syntax_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"dag_repositories": ')
    with pytest.raises(ManifestError, match=r"m\.json: invalid JSON at line 1"):
        load_manifest(tmp_path / "m.json")
    with pytest.raises(ManifestError, match="manifest file not found"):
        load_manifest(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600), ("1.5d", 129600), (12, 12)],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_password_in_a_url_is_masked_from_then_on() -> None:
    from dagfetch.redact import mask

    parse_manifest(repo(url="https://bot:url-Pass-7d1e@example.invalid/dags/"))
    assert mask("failed for https://bot:url-Pass-7d1e@example.invalid") == (
        "failed for https://bot:***@example.invalid"
    )
