"""Azure Blob against a real Azurite: conformance, listing-only checks, and the three ways
to authenticate (connection string, account key, SAS) with no secret leaking."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import FetchError
from dagfetch.storage import describe
from dagfetch.testing import FetcherConformance, one_repository
from tests.servers.azure import ACCOUNT, ACCOUNT_KEY, CONTAINER, Azurite


class AzureRemote:
    # Azurite rejects the signature of a '../x' blob name (it normalizes the path first):
    # the refusal of such names is shown against S3
    unsafe_names = False

    def __init__(self, server: Azurite, conn_id: str = "azurite", **options: Any) -> None:
        self.fs = server.filesystem()
        self.prefix = f"repo-{uuid.uuid4().hex[:12]}"
        self.url = f"az://{CONTAINER}/{self.prefix}"
        self.missing_url = f"az://{CONTAINER}/missing-{uuid.uuid4().hex[:12]}"
        self.entry: dict[str, Any] = {"conn_id": conn_id, "options": {"concurrency": 8, **options}}

    def write(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(f"{CONTAINER}/{self.prefix}/{path}", data)

    def delete(self, path: str) -> None:
        self.fs.rm_file(f"{CONTAINER}/{self.prefix}/{path}")

    def push(self) -> None:
        return None


@pytest.fixture
def az(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Azurite:
    monkeypatch.setenv("DAGFETCH_CONN_AZURITE", azurite.connection())
    return azurite


class TestAzureConformance(FetcherConformance):
    @pytest.fixture
    def remote(self, az: Azurite) -> AzureRemote:
        return AzureRemote(az)


def test_no_change_sync_only_lists(az: Azurite, tmp_path: Path) -> None:
    remote = AzureRemote(az)
    for i in range(20):
        remote.write(f"d{i}.py", f"# {i}\n".encode())
    ws = one_repository(remote, tmp_path)
    ws.sync_one("r")
    mark = az.mark()
    assert not ws.sync_one("r").changed
    seen = az.operations_since(mark)
    assert seen and set(seen) == {"Container_ListBlobFlatSegment"}, seen
    remote.write("d3.py", b"# three\n")
    mark = az.mark()
    result = ws.sync_one("r")
    seen = az.operations_since(mark)
    assert result.downloaded == 1
    assert seen.count("Blob_Download") == 1 and "Blob_GetProperties" not in seen, seen


def test_tokens_use_etag_and_content_md5() -> None:
    info = {"name": "dags/x.py", "size": 2, "type": "file", "etag": '"0x1E3F4049AEC0DD0"',
            "version_id": "2026-11-23T09:15:18.0000000Z",
            "content_settings": {"content_md5": bytearray(bytes.fromhex(
                "8a8bb7cd343aa2ad99b7d762030857a2"))}}
    described = describe("az", info, version_aware=True)
    assert described.token == "etag:0x1E3F4049AEC0DD0"
    assert described.digest == "md5:8a8bb7cd343aa2ad99b7d762030857a2"
    assert described.version == "2026-11-23T09:15:18.0000000Z"
    assert describe("az", info).version is None


def _check_no_leak(secret: str, texts: list[str], cache: Path) -> None:
    for text in texts:
        assert secret not in text
    for path in cache.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("how", ["account_key", "sas"])
def test_account_key_and_sas_connections(
    how: str, azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dagfetch")
    caplog.set_level(logging.INFO)
    if how == "account_key":
        conn: dict[str, Any] = {"login": ACCOUNT, "password": ACCOUNT_KEY,
                                "extra": {"blob_endpoint": azurite.endpoint}}
        secret = ACCOUNT_KEY
    else:
        sas = azurite.account_sas()
        conn = {"extra": {"sas_token": sas, "blob_endpoint": azurite.endpoint,
                          "account_name": ACCOUNT}}
        secret = sas.split("sig=")[1].split("&")[0]
    monkeypatch.setenv("DAGFETCH_CONN_AZ_ALT", json.dumps(conn))
    remote = AzureRemote(azurite, conn_id="az_alt")
    remote.write("a.py", b"a")
    ws = one_repository(remote, tmp_path)
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "a.py").read_bytes() == b"a"
    missing = AzureRemote(azurite, conn_id="az_alt")
    missing.url = missing.missing_url
    with pytest.raises(FetchError) as caught:
        one_repository(missing, tmp_path).sync_one("r")
    texts = [r.getMessage() for r in caplog.records] + [str(caught.value)]
    _check_no_leak(secret, texts, tmp_path / "cache")


def test_wrong_key_is_a_clear_error_without_the_key(
    azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "V3JvbmcgS2V5IGZvciBBenVyaXRlIHRlc3RzIG9ubHkgISEhISEhISEhISEhISEhISEhISE="
    monkeypatch.setenv("DAGFETCH_CONN_AZ_WRONG", json.dumps(
        {"login": ACCOUNT, "password": wrong, "extra": {"blob_endpoint": azurite.endpoint}}))
    remote = AzureRemote(azurite, conn_id="az_wrong", retries=0)
    remote.write("a.py", b"a")
    ws = one_repository(remote, tmp_path)
    with pytest.raises(FetchError) as caught:
        ws.sync_one("r")
    message = str(caught.value)
    assert "access denied" in message and "conn_id" in message and remote.url in message
    assert wrong not in message
    assert ws.cache.current_id("r") is None
