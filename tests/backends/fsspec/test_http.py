"""HTTP(S) against a real static server: conformance, one request per folder per check,
basic and bearer auth without leaks, and faults (5xx, slow, stopped mid-sync)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import FetchError, ManifestError, UnsafePathError
from dagfetch.models import SyncResult
from dagfetch.testing import FetcherConformance, one_repository
from dagfetch.workspace import Workspace
from tests.servers.http import PASSWORD, USER, StaticServer
from tests.servers.procs import StopAfterFirstFile


class HttpRemote:
    unsafe_names = False  # '..' cannot be a served path; escaping links are tested below

    def __init__(self, server: StaticServer, conn_id: str | None = "http_basic",
                 **options: Any) -> None:
        self.server = server
        self.prefix = f"repo-{uuid.uuid4().hex[:12]}"
        self.url = f"{server.url}/{self.prefix}/"
        self.missing_url = f"{server.url}/missing-{uuid.uuid4().hex[:12]}/"
        self.entry: dict[str, Any] = {"options": {"concurrency": 8, **options}}
        if conn_id:
            self.entry["conn_id"] = conn_id
        (server.root / self.prefix).mkdir()

    def write(self, path: str, data: bytes) -> None:
        self.server.write(f"{self.prefix}/{path}", data)

    def delete(self, path: str) -> None:
        self.server.delete(f"{self.prefix}/{path}")

    def push(self) -> None:
        return None


BASIC = json.dumps({"conn_type": "http", "login": USER, "password": PASSWORD})


@pytest.fixture
def http(http_server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> StaticServer:
    monkeypatch.setenv("DAGFETCH_CONN_HTTP_BASIC", BASIC)
    return http_server


class TestHttpConformance(FetcherConformance):
    @pytest.fixture
    def remote(self, http: StaticServer) -> HttpRemote:
        return HttpRemote(http)


def since(server: StaticServer, mark: int, prefix: str) -> list[tuple[str, str, int]]:
    return [r for r in server.requests[mark:] if r[1].startswith(f"/{prefix}/")]


BASE = {"a.py": b"a", "b.py": b"b" * 50, "lib/__init__.py": b"", "lib/util.py": b"U = 1\n"}


# -- request counts ------------------------------------------------------------------------------


def synced(http: StaticServer, tmp_path: Path) -> tuple[HttpRemote, Workspace]:
    """BASE served and synced once."""
    remote = HttpRemote(http)
    for path, data in BASE.items():
        remote.write(path, data)
    ws = one_repository(remote, tmp_path)
    ws.sync_one("r")
    return remote, ws


def test_no_change_sync_costs_one_get_per_folder(http: StaticServer, tmp_path: Path) -> None:
    remote, ws = synced(http, tmp_path)
    mark = len(http.requests)
    assert not ws.sync_one("r").changed
    seen = since(http, mark, remote.prefix)
    assert sorted(p for _, p, _ in seen) == [f"/{remote.prefix}/", f"/{remote.prefix}/lib/"]
    assert {m for m, _, _ in seen} == {"GET"}

    remote.write("lib/util.py", b"U = 2\n")
    mark = len(http.requests)
    result = ws.sync_one("r")
    gets = [p for m, p, _ in since(http, mark, remote.prefix) if not p.endswith("/")]
    assert result.downloaded == 1 and gets == [f"/{remote.prefix}/lib/util.py"]


def test_index_pages_are_fetched_conditionally(http: StaticServer, tmp_path: Path) -> None:
    remote, ws = synced(http, tmp_path)
    mark = len(http.requests)
    assert not ws.sync_one("r").changed
    # both index pages: 304 Not Modified, the stored pages are reused
    assert sorted((p, s) for _, p, s in since(http, mark, remote.prefix)) == [
        (f"/{remote.prefix}/", 304), (f"/{remote.prefix}/lib/", 304)]

    remote.write("lib/util.py", b"U = 3\n")
    mark = len(http.requests)
    assert ws.sync_one("r").downloaded == 1
    pages = {p: s for m, p, s in since(http, mark, remote.prefix) if p.endswith("/")}
    assert pages == {f"/{remote.prefix}/": 304, f"/{remote.prefix}/lib/": 200}
    assert (ws.path("r") / "lib" / "util.py").read_bytes() == b"U = 3\n"

    # a damaged page cache only costs full GETs
    (ws.cache.layout.work_dir("r") / "http-index.json").write_text("{not json")
    mark = len(http.requests)
    assert not ws.sync_one("r").changed
    assert {s for _, _, s in since(http, mark, remote.prefix)} == {200}


def test_plain_index_falls_back_to_one_head_per_file(http: StaticServer, tmp_path: Path) -> None:
    remote = HttpRemote(http)
    for path, data in BASE.items():
        remote.write(path, data)
    http.index_metadata = False
    try:
        ws = one_repository(remote, tmp_path)
        ws.sync_one("r")
        mark = len(http.requests)
        assert not ws.sync_one("r").changed
        heads = [p for m, p, _ in since(http, mark, remote.prefix) if m == "HEAD"]
        assert len(heads) == len(BASE)
        remote.write("a.py", b"a2")
        assert ws.sync_one("r").downloaded == 1
    finally:
        http.index_metadata = True


def test_server_without_validators_is_a_clear_error(http: StaticServer, tmp_path: Path) -> None:
    remote = HttpRemote(http)
    remote.write("a.py", b"a")
    http.validators = False
    try:
        with pytest.raises(FetchError, match="neither ETag nor Last-Modified"):
            one_repository(remote, tmp_path).sync_one("r")
    finally:
        http.validators = True


def test_link_escaping_the_repository_is_refused_by_name(
    http: StaticServer, tmp_path: Path
) -> None:
    remote = HttpRemote(http)
    remote.write("a.py", b"a")
    ws = one_repository(remote, tmp_path)
    good = ws.sync_one("r")
    http.extra_links[f"/{remote.prefix}/"] = ['<a href="..%2Fescaped.py" data-etag="x">e</a>']
    with pytest.raises(UnsafePathError, match=r"\.\./escaped\.py"):
        ws.sync_one("r")
    assert ws.cache.current_id("r") == good.version_id


# -- auth and secrets ----------------------------------------------------------------------------


def _no_leak(secret: str, texts: list[str], cache: Path) -> None:
    for text in texts:
        assert secret not in text
    for path in cache.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


def test_bearer_token_and_wrong_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dagfetch")
    caplog.set_level(logging.INFO)
    token = "bearer-Token-Value-5d9e2a"
    server = StaticServer(tmp_path / "served", token=token)
    server.start()
    try:
        monkeypatch.setenv("DAGFETCH_CONN_HTTP_TOKEN", json.dumps({"extra": {"token": token}}))
        remote = HttpRemote(server, conn_id="http_token")
        remote.write("a.py", b"a")
        ws = one_repository(remote, tmp_path)
        assert ws.sync_one("r").changed
        assert (ws.path("r") / "a.py").read_bytes() == b"a"

        wrong = "wrong-Bearer-Token-0000"
        monkeypatch.setenv("DAGFETCH_CONN_HTTP_TOKEN", json.dumps({"extra": {"token": wrong}}))
        with pytest.raises(FetchError) as caught:
            ws.sync_one("r")
        message = str(caught.value)
        assert "access denied" in message and remote.url in message
        status = ws.status()[0]
        texts = [r.getMessage() for r in caplog.records] + [message, json.dumps(status.to_json())]
        _no_leak(token, texts, tmp_path / "cache")
        _no_leak(wrong, texts, tmp_path / "cache")
    finally:
        server.stop()


def test_basic_auth_secret_stays_out_of_logs_and_cache(
    http: StaticServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dagfetch")
    caplog.set_level(logging.INFO)
    remote = HttpRemote(http)
    remote.write("a.py", b"a")
    ws = one_repository(remote, tmp_path)
    ws.sync_one("r")
    no_auth = HttpRemote(http, conn_id=None)
    with pytest.raises(FetchError, match="access denied"):
        one_repository(no_auth, tmp_path / "other").sync_one("r")
    _no_leak(PASSWORD, [r.getMessage() for r in caplog.records], tmp_path)


# -- faults --------------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StaticServer]:
    server = StaticServer(tmp_path / "served", user=USER, password=PASSWORD)
    server.start()
    monkeypatch.setenv("DAGFETCH_CONN_HTTP_BASIC", BASIC)
    yield server
    server.stop()


def _seeded(server: StaticServer, tmp_path: Path, **options: Any) -> tuple[HttpRemote, Workspace,
                                                                             SyncResult]:
    remote = HttpRemote(server, **options)
    for path, data in BASE.items():
        remote.write(path, data)
    ws = one_repository(remote, tmp_path)
    return remote, ws, ws.sync_one("r")


def test_transient_5xx_are_retried(own_server: StaticServer, tmp_path: Path) -> None:
    remote, ws, _ = _seeded(own_server, tmp_path, retries=4, concurrency=1)
    remote.write("a.py", b"a2")
    own_server.fail_next, own_server.fail_status = 2, 503
    mark = len(own_server.requests)
    result = ws.sync_one("r")
    assert result.changed and (ws.path("r") / "a.py").read_bytes() == b"a2"
    assert [s for _, _, s in own_server.requests[mark:]].count(503) == 2


@pytest.mark.parametrize(("retries", "failures", "succeeds"), [
    (0, 1, False),  # 0 = no retry, as for botocore, urllib3 and tenacity
    (1, 1, True),
    (1, 2, False),
    (2, 2, True),
])
def test_retries_count_retries_after_the_first_attempt(
    own_server: StaticServer, tmp_path: Path, retries: int, failures: int, succeeds: bool
) -> None:
    remote, ws, _ = _seeded(own_server, tmp_path, retries=retries, concurrency=1)
    remote.write("a.py", b"a2")
    own_server.fail_next, own_server.fail_status = failures, 503
    mark = len(own_server.requests)
    if succeeds:
        assert ws.sync_one("r").changed
    else:
        with pytest.raises(FetchError, match="503"):
            ws.sync_one("r")
    assert [s for _, _, s in own_server.requests[mark:]].count(503) == min(failures, retries + 1)


def test_persistent_500_fails_cleanly_then_recovers(
    own_server: StaticServer, tmp_path: Path
) -> None:
    remote, ws, good = _seeded(own_server, tmp_path, retries=2)
    remote.write("b.py", b"b2")
    own_server.fail_next, own_server.fail_status = 10_000, 500
    with pytest.raises(FetchError, match="500") as caught:
        ws.sync_one("r")
    assert remote.url in str(caught.value)
    assert ws.cache.current_id("r") == good.version_id
    assert (ws.path("r") / "b.py").read_bytes() == BASE["b.py"]
    status = ws.status()[0]
    assert status.last_error is not None and "500" in status.last_error["message"]
    assert status.last_success_at is not None
    own_server.reset_faults()
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "b.py").read_bytes() == b"b2"
    assert ws.status()[0].last_error is None


def test_slow_server_hits_the_total_timeout(own_server: StaticServer, tmp_path: Path) -> None:
    remote, ws, good = _seeded(own_server, tmp_path, timeout=1, concurrency=2)
    for i in range(4):
        remote.write(f"slow{i}.py", b"s")
    own_server.delay = 1.5
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"did not finish within the timeout of 1 s"):
        ws.sync_one("r")
    assert time.monotonic() - started < 5
    assert ws.cache.current_id("r") == good.version_id
    assert "timeout" in (ws.status()[0].last_error or {})["message"]
    own_server.reset_faults()
    assert ws.sync_one("r").changed


def test_server_stopped_mid_sync(own_server: StaticServer, tmp_path: Path) -> None:
    remote, ws, good = _seeded(own_server, tmp_path, concurrency=1, retries=2)
    for path in BASE:
        remote.write(path, b"new " + path.encode())
    with pytest.raises(FetchError, match="download failed") as caught:
        ws.sync_one("r", observer=StopAfterFirstFile(own_server.stop))
    assert remote.url in str(caught.value)
    assert ws.cache.current_id("r") == good.version_id
    status = ws.status()[0]
    assert status.last_error is not None and status.last_success_at is not None
    staging = ws.cache.layout.staging("r")
    assert not staging.exists() or not any(staging.iterdir())
    own_server.start()
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "lib/util.py").read_bytes() == b"new lib/util.py"


def test_retry_policy_classifies_lower_library_errors() -> None:
    from dagfetch.backends.fsspec.downloads import is_transient as _transient
    from dagfetch.backends.fsspec.http_index import HttpStatusError

    class BotoLike(Exception):
        response = {"ResponseMetadata": {"HTTPStatusCode": 503}}  # noqa: RUF012

    assert _transient(HttpStatusError(500, "http://h/x")) and _transient(BotoLike())
    assert _transient(HttpStatusError(429, "http://h/x"))
    assert _transient(ConnectionResetError()) and _transient(TimeoutError())
    assert _transient(Exception("SlowDown: please reduce your request rate"))
    assert not _transient(HttpStatusError(403, "http://h/x"))
    assert not _transient(HttpStatusError(404, "http://h/x"))
    assert not _transient(FileNotFoundError()) and not _transient(PermissionError())
    assert not _transient(FetchError("a decided failure"))


@pytest.mark.parametrize("url", ["https://git.example.invalid/org/dags.git",
                                 "http://git.example.invalid/dags.git/"])
def test_a_git_remote_written_as_http_suggests_git_plus_https(tmp_path: Path, url: str) -> None:
    ws = one_repository(url, tmp_path)
    with pytest.raises(ManifestError) as caught:
        ws.validate()  # before any request: the host does not even exist
    assert caught.value.field == "dag_repositories.r.url"
    assert f"write it as git+{url}" in str(caught.value)
