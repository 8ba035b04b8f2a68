"""Every bad manifest field fails before any fetch, naming the field's dotted path."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import ManifestError
from dagfetch.manifest import load_manifest, parse_duration, parse_manifest, url_forms
from dagfetch.manifest import urls as manifest_urls
from dagfetch.protocol import URL_FORMS_GROUP
from dagfetch.workspace import Workspace
from tests.distfactory import installed


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


@pytest.mark.parametrize(("data", "field", "words"), [
    ({**repo(), "databse": "sqlite://"}, "databse",
     "unknown key; did you mean 'database'? (allowed: connections_file, dag_repositories, "
     "database, extract, extractors, scheme_providers, team_cache, web)"),
    (repo(keep_version=2), "dag_repositories.repo1.keep_version",
     "unknown key; did you mean 'keep_versions'? (allowed: conn_id, exclude,"),
    (repo(retries=0), "dag_repositories.repo1.retries", "unknown key (allowed: conn_id,"),
])
def test_an_unknown_key_suggests_the_closest_allowed_one(
    data: Any, field: str, words: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, source="m.toml")
    assert caught.value.field == field
    assert f"m.toml: {field}: {words}" in str(caught.value)


def test_an_unknown_scheme_fails_its_repository_by_name_and_the_others_sync(
    tmp_path: Path,
) -> None:
    (tmp_path / "dags.py").write_text("x = 1\n")
    manifest = parse_manifest(
        {"dag_repositories": {"ok": {"url": str(tmp_path)}, "repo2": {"url": "nope://x/y"}}}
    )
    ws = Workspace(manifest, cache_root=tmp_path / "cache")
    results = {r.repo_id: r for r in ws.sync()}
    bad = results["repo2"]
    assert bad.error is not None and bad.config_error and bad.version_id is None
    assert bad.error.startswith("dag_repositories.repo2.url: no fetcher for URL scheme 'nope'")
    assert "file" in bad.error and "s3" in bad.error  # the known schemes are listed
    assert results["ok"].error is None and results["ok"].version_id  # the other one synced


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


# -- URLs written without scheme:// ------------------------------------------------------------


def test_scp_like_git_address_is_kept_as_written_and_served_by_ssh() -> None:
    """The git backend's URL form (an entry point), not the manifest, knows this address."""
    spec = parse_manifest(repo(url="git@git.example.com:team/dags.git")).get("repo1")
    assert spec.url == "git@git.example.com:team/dags.git"
    assert spec.scheme == "ssh"
    names = {f.name: f.distribution for f in url_forms()}
    assert names["scp-like"] == "dagfetch"


@pytest.fixture
def fresh_forms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forms are read once per process: forget them before and after the test."""
    monkeypatch.setattr(manifest_urls, "_forms", None)
    yield
    url_forms(reload=True)


FORMS = """
LOADED = True
def at_form(url):
    return "memory" if url.startswith("mem@") else None
def also_at(url):
    return "file" if url.startswith("mem@") else None
def bad_scheme(url):
    return "not a scheme" if url.startswith("odd@") else None
"""


@pytest.mark.usefixtures("fresh_forms")
def test_a_url_form_from_a_plugins_entry_point(tmp_path: Path) -> None:
    with installed(tmp_path / "site", "form-plugin", "1.0",
                   {URL_FORMS_GROUP: {"mem-at": "formmod:at_form"}}, {"formmod": FORMS}):
        parse_manifest(repo())  # URLs with scheme:// never read the forms
        assert "formmod" not in sys.modules
        spec = parse_manifest(repo(url="mem@team/dags")).get("repo1")
        assert "formmod" in sys.modules
        assert spec.url == "mem@team/dags" and spec.scheme == "memory"
        # a URL no form claims is still a path, and a mistyped scheme still an error
        assert parse_manifest(repo(url="/srv/dags")).get("repo1").scheme == "file"
        with pytest.raises(ManifestError, match="missing '//'"):
            parse_manifest(repo(url="s3:bucket"))


@pytest.mark.usefixtures("fresh_forms")
def test_url_forms_that_disagree_or_misbehave_name_the_url_field(tmp_path: Path) -> None:
    forms = {"mem-at": "formmod:at_form", "also-at": "formmod:also_at",
             "odd": "formmod:bad_scheme"}
    with installed(tmp_path / "site", "form-plugin", "1.0", {URL_FORMS_GROUP: forms},
                   {"formmod": FORMS}):
        with pytest.raises(ManifestError, match="URL forms disagree") as caught:
            parse_manifest(repo(url="mem@team/dags"))
        assert caught.value.field == "dag_repositories.repo1.url"
        assert "form-plugin (also-at) say file" in str(caught.value)
        with pytest.raises(ManifestError, match=r"form-plugin \(odd\) returned 'not a scheme'"):
            parse_manifest(repo(url="odd@x"))


@pytest.mark.usefixtures("fresh_forms")
def test_a_url_form_that_fails_to_load_names_its_distribution(tmp_path: Path) -> None:
    with installed(tmp_path / "site", "broken-form", "2.0",
                   {URL_FORMS_GROUP: {"nope": "brokenformmod:form"}},
                   {"brokenformmod": "import no_such_module_anywhere\n"}):
        with pytest.raises(ManifestError) as caught:
            parse_manifest(repo(url="somewhere/relative"))
        assert caught.value.field == "dag_repositories.repo1.url"
        assert "URL form 'nope' of broken-form 2.0 failed to load" in str(caught.value)
        assert "reinstall broken-form" in str(caught.value)


def _repo_with_limits(limits: Any) -> dict[str, Any]:
    return {"dag_repositories": {"r": {"url": "memory://x", "limits": limits}}}


def test_limits_have_safe_defaults_and_take_durations() -> None:
    from dagfetch.limits import DEFAULT_LIMITS

    spec = parse_manifest({"dag_repositories": {"r": {"url": "memory://x"}}}).get("r")
    assert spec.limits == DEFAULT_LIMITS
    assert spec.limits.max_file_bytes == 100 * 1024 * 1024 and spec.limits.sync_timeout == 3600
    spec = parse_manifest(_repo_with_limits({"sync_timeout": "2h", "read_timeout": "90s",
                                              "max_files": 10})).get("r")
    assert (spec.limits.sync_timeout, spec.limits.read_timeout, spec.limits.max_files) == (
        7200.0, 90.0, 10)


@pytest.mark.parametrize(
    ("limits", "field", "words"),
    [({"max_files": 0}, "dag_repositories.r.limits.max_files", ">= 1"),
     ({"max_file_byte": 5}, "dag_repositories.r.limits.max_file_byte", "max_file_bytes"),
     ({"sync_timeout": "soon"}, "dag_repositories.r.limits.sync_timeout", "positive"),
     ({"name_twins": "sometimes"}, "dag_repositories.r.limits.name_twins", "'refuse'"),
     ("big", "dag_repositories.r.limits", "table")],
)
def test_a_bad_limit_is_named(limits: Any, field: str, words: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(_repo_with_limits(limits))
    assert caught.value.field == field
    assert words in str(caught.value)
