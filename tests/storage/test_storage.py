"""dagfetch.storage: the one table of store families and opening a file system for a URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fsspec.spec import AbstractFileSystem

from dagfetch.connections import connection_from_mapping
from dagfetch.errors import BackendNotInstalled, ConfigError, FetchError
from dagfetch.storage import (
    FAMILIES,
    OTHER,
    describe,
    family_for,
    is_store,
    open_filesystem,
    storage_options,
    versioned_path,
)


def test_every_protocol_belongs_to_one_family() -> None:
    seen: dict[str, str] = {}
    for family in FAMILIES:
        for protocol in family.protocols:
            assert protocol not in seen, (protocol, seen.get(protocol), family.name)
            seen[protocol] = family.name
            assert family_for(protocol) is family
            assert family_for(protocol.upper()) is family
    assert family_for("sftp") is OTHER and family_for("simplecache") is OTHER


@pytest.mark.parametrize(("protocol", "path"), [
    ("s3", "b/k.py?versionId=v1"), ("s3a", "b/k.py?versionId=v1"), ("gs", "b/k.py#v1"),
    ("az", "b/k.py?versionid=v1"), ("abfss", "b/k.py?versionid=v1"),
])
def test_versioned_paths_per_family(protocol: str, path: str) -> None:
    assert family_for(protocol).versioned
    assert versioned_path(protocol, "b/k.py", "v1") == path


@pytest.mark.parametrize("protocol", ["http", "https", "file", "memory", "sftp"])
def test_stores_without_versions_say_so(protocol: str) -> None:
    assert not family_for(protocol).versioned
    with pytest.raises(ValueError, match="keeps no object versions"):
        versioned_path(protocol, "k", "v1")


def test_install_hints_name_dagfetchs_extras() -> None:
    hints = {family.name: family.install_hint for family in FAMILIES}
    assert hints == {"s3": "pip install 'dagfetch[s3]'", "gcs": "pip install 'dagfetch[gcs]'",
                     "azure": "pip install 'dagfetch[azure]'",
                     "http": "pip install 'dagfetch[http]'", "local": None}


def test_tokens_follow_the_family() -> None:
    info = {"ETag": '"abc"', "size": 3, "VersionId": "v9", "mtime": 1.5, "ino": 7}
    assert describe("s3", info, version_aware=True).token == "etag:abc"
    assert describe("s3", info, version_aware=True).version == "v9"
    assert describe("https", {"last_modified": "Mon"}).token == "modified:Mon"
    assert describe("file", {"mtime": 1.5, "ino": 7}).token == "mtime:1.500000000:ino:7"


def test_connection_mapping_follows_the_family() -> None:
    conn = connection_from_mapping("c", {"login": "AKIA", "password": "pw-123456",
                                         "extra": {"region_name": "eu-west-1", "other": 1}})
    assert storage_options("s3", conn) == {"key": "AKIA", "secret": "pw-123456",
                                           "client_kwargs": {"region_name": "eu-west-1"},
                                           "other": 1}
    assert storage_options("memory", conn) == {"region_name": "eu-west-1", "other": 1}
    assert storage_options("s3", None) == {}


@pytest.mark.parametrize("protocol", ["zip", "tar", "libarchive", "git", "reference"])
def test_fsspecs_views_of_other_data_are_not_stores(protocol: str) -> None:
    assert not is_store(protocol)


def test_stores_fsspec_knows() -> None:
    assert is_store("s3") and is_store("memory") and is_store("simplecache")
    assert not is_store("nosuch") and not is_store("zip+s3")


def test_open_filesystem_joins_connection_and_storage_options(tmp_path: Path) -> None:
    store = open_filesystem(f"file://{tmp_path}", None, {"auto_mkdir": True})
    assert store.fs.auto_mkdir is True
    assert store.path == str(tmp_path) and store.family.name == "local"
    http = open_filesystem("https://example.invalid/dags/",
                           connection_from_mapping("h", {"extra": {"token": "tok-987654"}}),
                           {"client_kwargs": {"trust_env": False}})
    assert http.path == "https://example.invalid/dags/"
    assert http.fs.kwargs["headers"] == {"Authorization": "Bearer tok-987654"}
    assert http.fs.client_kwargs == {"trust_env": False}


def test_open_filesystem_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    cached = sys.modules["fsspec.registry"]._registry
    monkeypatch.delitem(cached, "gs", raising=False)
    with pytest.raises(BackendNotInstalled, match=r"pip install 'dagfetch\[gcs\]'") as caught:
        open_filesystem("gs://bucket/dags")
    assert isinstance(caught.value.__cause__, ImportError)
    with pytest.raises(BackendNotInstalled, match="install the fsspec implementation"):
        open_filesystem("nosuchproto://x")


class RefusingFileSystem(AbstractFileSystem):
    protocol = "refusing"

    def __init__(self, **kwargs: object) -> None:
        raise ValueError(f"bad arguments {sorted(kwargs)}")


def test_a_refusing_file_system_is_a_fetch_error_and_a_bad_connection_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules["fsspec.registry"]._registry, "refusing", RefusingFileSystem)
    with pytest.raises(FetchError, match=r"^where: cannot open the file system: bad arguments"):
        open_filesystem("refusing://x", None, {"no_such_argument": 1}, where="where")
    bad = connection_from_mapping("c", {"extra": {"anon": "maybe"}})
    with pytest.raises(ConfigError, match="'anon' must be true or false"):
        open_filesystem("s3://bucket/dags", bad)
