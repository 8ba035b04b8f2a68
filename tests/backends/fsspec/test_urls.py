"""fsspec's own URL handling: chained URLs (against moto_server and file://) and protocols
whose URL carries arguments (``github://org:repo@ref/path``, parsed without the network)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.cached import SimpleCacheFileSystem
from fsspec.implementations.github import GithubFileSystem

from dagfetch.errors import ManifestError
from dagfetch.manifest import parse_manifest, url_scheme
from dagfetch.redact import mask, redact_url
from dagfetch.storage import open_filesystem, url_protocol, url_protocols
from dagfetch.testing import one_repository
from tests.servers.s3 import MotoServer

BUCKET = "dags-chained"


def test_a_chained_file_url_syncs_through_simplecache(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "a.py").write_text("a = 1\n")
    (repo / "lib" / "u.py").write_text("u = 1\n")
    cache_dir = tmp_path / "fsspec-cache"
    # a key that is no link's protocol goes to the first link (fsspec's rule)
    ws = one_repository(f"simplecache::file://{repo}", tmp_path,
                        options={"storage_options": {"cache_storage": str(cache_dir)}})
    fetcher: Any = ws.fetcher_for(ws.manifest.get("r"))
    assert isinstance(fetcher.fs, SimpleCacheFileSystem)
    assert fetcher.fs.storage[-1] == str(cache_dir)
    first = ws.sync_one("r")
    assert first.changed and first.downloaded == 2
    assert (ws.path("r") / "lib" / "u.py").read_text() == "u = 1\n"
    assert not ws.sync_one("r").changed
    (repo / "a.py").write_text("a = 2\n")
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "a.py").read_text() == "a = 2\n"


def test_a_chained_relative_path_resolves_against_the_manifest(tmp_path: Path) -> None:
    manifest = parse_manifest({"dag_repositories": {"r": {"url": "simplecache::repo"}}},
                              base_dir=tmp_path)
    assert manifest.get("r").url == f"simplecache::file://{tmp_path / 'repo'}"
    assert manifest.get("r").scheme == "file"


@pytest.fixture
def chained_bucket(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_server.ensure_bucket(BUCKET)
    monkeypatch.setenv("DAGFETCH_CONN_MOTO", moto_server.connection())
    return moto_server


def test_a_chained_s3_url_takes_the_connection_on_the_store(
    chained_bucket: MotoServer, tmp_path: Path
) -> None:
    prefix = f"repo-{uuid.uuid4().hex[:8]}"
    client = chained_bucket.client()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/dag.py", Body=b"x = 1\n")
    ws = one_repository(f"simplecache::s3://{BUCKET}/{prefix}", tmp_path, conn_id="moto")
    fetcher: Any = ws.fetcher_for(ws.manifest.get("r"))
    assert isinstance(fetcher.fs, SimpleCacheFileSystem)
    # the connection's key, secret and endpoint went to s3, the last link
    assert fetcher.fs.fs.endpoint_url == chained_bucket.endpoint
    first = ws.sync_one("r")
    assert first.changed and (ws.path("r") / "dag.py").read_bytes() == b"x = 1\n"
    mark = chained_bucket.mark()
    assert not ws.sync_one("r").changed
    # a no-change check is a listing, as without the chain: nothing was downloaded again
    assert not [r for r in chained_bucket.requests_since(mark) if r[0] == "GET"
                and "list-type" not in r[1] and "prefix=" not in r[1]]


def test_chains_parse_by_link() -> None:
    assert url_protocols("simplecache::s3://b/dags") == ["simplecache", "s3"]
    assert url_protocols("filecache::/tmp/x") == ["filecache", "file"]
    assert url_protocol("simplecache::gs://b/x") == "gs"
    assert url_scheme("simplecache::s3://b/dags") == "s3"
    # each link is redacted by its own scheme
    assert redact_url("simplecache::https://bob:pw-secret-1@host/x") == (
        "simplecache::https://bob:***@host/x")


def test_a_chain_over_an_index_listed_store_is_refused(tmp_path: Path) -> None:
    ws = one_repository("simplecache::https://example.invalid/dags/", tmp_path)
    with pytest.raises(ManifestError, match=r"dag_repositories\.r\.url: .*chained URL"):
        ws.validate()


def test_a_chain_with_a_bad_link_names_the_field() -> None:
    with pytest.raises(ManifestError, match=r"dag_repositories\.r\.url: 'no way'"):
        parse_manifest({"dag_repositories": {"r": {"url": "no way::s3://b/x"}}})
    with pytest.raises(ManifestError, match="ends in '::'"):
        parse_manifest({"dag_repositories": {"r": {"url": "simplecache::"}}})


# -- github://org:repo@ref/path: arguments in the URL, not credentials -----------------------

GITHUB_URL = "github://apache-org:airflow-dags@0123abc/dags"


@pytest.fixture
def github_offline(monkeypatch: pytest.MonkeyPatch) -> list[GithubFileSystem]:
    """GithubFileSystem lists its root when built; answer that without the network, so what
    is tested is how the URL reached the file system."""
    built: list[GithubFileSystem] = []

    def ls(self: GithubFileSystem, path: str, **kwargs: Any) -> list[Any]:
        built.append(self)
        return []

    monkeypatch.setattr(GithubFileSystem, "ls", ls)
    return built


def test_a_github_url_reaches_the_file_system_as_arguments(
    github_offline: list[GithubFileSystem], tmp_path: Path
) -> None:
    ws = one_repository(GITHUB_URL, tmp_path)
    ws.validate()  # no TypeError: org, repo and ref came from the URL
    (fs,) = {id(f): f for f in github_offline}.values()
    assert (fs.org, fs.repo, fs.root) == ("apache-org", "airflow-dags", "0123abc")
    store = open_filesystem(GITHUB_URL)
    assert store.path == "dags" and store.protocol == "github"


def test_a_github_url_is_not_masked_as_a_password(tmp_path: Path) -> None:
    manifest = parse_manifest({"dag_repositories": {"r": {"url": GITHUB_URL}}})
    assert manifest.get("r").scheme == "github"
    assert redact_url(GITHUB_URL) == GITHUB_URL
    assert mask(f"reading {GITHUB_URL}") == f"reading {GITHUB_URL}"
    # a secret-looking query value is still masked
    assert redact_url("github://o:r@main/x?token=tok-42424242") == (
        "github://o:r@main/x?token=***")
    # while an https URL's password is one, and is masked wherever it shows up
    parse_manifest({"dag_repositories": {"h": {"url": "https://u:pw-4242-x@h/x/"}}})
    assert json.dumps(mask("pw-4242-x")) == '"***"'
