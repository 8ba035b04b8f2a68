"""The manifest's ``team_cache``: errors name the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from dagfetch.errors import ManifestError
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace

REPOS = {"dag_repositories": {"r": {"url": "/tmp/never-read"}}}


@pytest.mark.parametrize(("team_cache", "field"), [
    ("s3://b/p", "team_cache"),
    ({}, "team_cache.url"),
    ({"url": ""}, "team_cache.url"),
    ({"url": "s3:/b"}, "team_cache.url"),
    ({"url": "s3://b/p", "conn_id": "no spaces"}, "team_cache.conn_id"),
    ({"url": "s3://b/p", "bucket": "b"}, "team_cache.bucket"),
    ({"url": "s3://b/p", "con_id": "c"}, "team_cache.con_id"),
])
def test_a_bad_team_cache_names_its_field(team_cache: Any, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest({**REPOS, "team_cache": team_cache})
    assert caught.value.field == field


def test_a_team_cache_is_optional_and_read_as_given() -> None:
    assert parse_manifest(REPOS).team_cache is None
    spec = parse_manifest({**REPOS, "team_cache": {"url": "s3://b/p/", "conn_id": "c"}}).team_cache
    assert spec is not None and (spec.url, spec.conn_id) == ("s3://b/p", "c")


def test_an_unknown_conn_id_names_the_team_cache_field(tmp_path: Any) -> None:
    manifest = parse_manifest({**REPOS, "team_cache": {"url": "memory://team", "conn_id": "nope"}})
    with pytest.raises(ManifestError, match=r"team_cache\.conn_id"):
        Workspace(manifest, cache_root=tmp_path).follow("r")


def test_follow_without_a_team_cache_says_what_to_add(tmp_path: Any) -> None:
    with pytest.raises(ManifestError, match="team_cache"):
        Workspace(parse_manifest(REPOS), cache_root=tmp_path).follow("r")


def test_validate_checks_the_team_cache_without_a_request(tmp_path: Any) -> None:
    data = {"dag_repositories": {"r": {"url": str(tmp_path)}},
            "team_cache": {"url": "memory://team", "conn_id": "missing"}}
    with pytest.raises(ManifestError, match=r"team_cache\.conn_id"):
        Workspace(parse_manifest(data), cache_root=tmp_path / "c").validate()
