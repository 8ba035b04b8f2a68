"""S3 against a real moto_server: conformance, request counts, versions, immutability,
connections and secrets, faults."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import FetchError, ImmutableSourceChanged, ManifestError
from dagfetch.manifest import parse_manifest
from dagfetch.testing import FetcherConformance, one_repository
from dagfetch.workspace import Workspace
from tests.servers.procs import StopAfterFirstFile
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, MotoServer

PLAIN = "dags-plain"
VERSIONED = "dags-versioned"


@pytest.fixture(scope="module")
def buckets(moto_server: MotoServer) -> MotoServer:
    client = moto_server.client()
    client.create_bucket(Bucket=PLAIN)
    client.create_bucket(Bucket=VERSIONED)
    client.put_bucket_versioning(Bucket=VERSIONED,
                                 VersioningConfiguration={"Status": "Enabled"})
    return moto_server


class S3Remote:
    unsafe_names = True  # S3 keys may hold '..' segments; the core must refuse them

    def __init__(self, server: MotoServer, bucket: str, **options: Any) -> None:
        self.server = server
        self.client = server.client()
        self.bucket = bucket
        self.prefix = f"repo-{uuid.uuid4().hex[:12]}"
        self.url = f"s3://{bucket}/{self.prefix}"
        self.missing_url = f"s3://{bucket}/missing-{uuid.uuid4().hex[:12]}"
        self.entry: dict[str, Any] = {"conn_id": "moto", "options": {"concurrency": 8, **options}}

    def key(self, path: str) -> str:
        return f"{self.prefix}/{path}"

    def write(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data)

    def write_many(self, files: dict[str, bytes]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: self.write(*item), files.items()))

    def delete(self, path: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(path))

    def push(self) -> None:
        return None


@pytest.fixture
def conn_env(buckets: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    monkeypatch.setenv("DAGFETCH_CONN_MOTO", buckets.connection())
    return buckets


class TestS3Conformance(FetcherConformance):
    """An unversioned bucket: an evicted version is reported as gone for good."""

    @pytest.fixture
    def remote(self, conn_env: MotoServer) -> S3Remote:
        return S3Remote(conn_env, PLAIN)


class TestS3VersionedConformance(FetcherConformance):
    """A versioned bucket read version-aware: an evicted version is fetched again exactly."""

    @pytest.fixture
    def remote(self, conn_env: MotoServer) -> S3Remote:
        return S3Remote(conn_env, VERSIONED, version_aware=True)


def object_gets(requests: list[tuple[str, str, int]]) -> list[str]:
    return [path for method, path, _ in requests if method == "GET" and "list-type" not in path
            and "versions" not in path.split("?", 1)[-1]]


def listings(requests: list[tuple[str, str, int]]) -> list[str]:
    return [path for method, path, _ in requests if method == "GET"
            and ("list-type=2" in path or "?versions" in path)]


# -- request counts ------------------------------------------------------------------------------


def test_thousand_objects_no_change_lists_only_and_one_change_gets_one(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, PLAIN, concurrency=16)
    files = {f"dags/d{i:04d}.py": f"# dag {i}\n".encode() for i in range(1000)}
    started = time.monotonic()
    remote.write_many(files)
    print(f"seeding 1,000 objects: {time.monotonic() - started:.2f} s")
    ws = one_repository(remote, tmp_path)

    mark = conn_env.mark()
    started = time.monotonic()
    first = ws.sync_one("r")
    print(f"first sync of 1,000 objects: {time.monotonic() - started:.2f} s")
    assert first.downloaded == 1000
    assert len(object_gets(conn_env.requests_since(mark))) == 1000

    mark = conn_env.mark()
    again = ws.sync_one("r")
    seen = conn_env.requests_since(mark)
    assert not again.changed and again.downloaded == 0
    # 1,000 keys fit one ListObjectsV2 page: one request, no HEAD, no GET of an object
    assert len(listings(seen)) == 1
    assert seen == [(m, p, s) for m, p, s in seen if p in listings(seen)], seen

    remote.write("dags/d0500.py", b"# dag 500, changed\n")
    mark = conn_env.mark()
    changed = ws.sync_one("r")
    seen = conn_env.requests_since(mark)
    assert changed.changed and changed.downloaded == 1 and changed.reused == 999
    assert object_gets(seen) == [f"/{PLAIN}/{remote.prefix}/dags/d0500.py"]
    assert len(listings(seen)) == 1 and len(seen) == 2, seen
    assert (ws.path("r") / "dags/d0500.py").read_bytes() == b"# dag 500, changed\n"

    # a 1,001st key spills into a second page: a check then costs two listing requests
    remote.write("dags/e.py", b"e")
    ws.sync_one("r")
    mark = conn_env.mark()
    ws.sync_one("r")
    seen = conn_env.requests_since(mark)
    assert len(seen) == len(listings(seen)) == 2, seen


def test_evicted_version_refetched_exactly_by_version_id(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, VERSIONED, version_aware=True)
    remote.write_many({"a.py": b"a1", "b.py": b"b1", "lib/c.py": b"c1"})
    ws = one_repository(remote, tmp_path, keep_versions=1)
    first = ws.sync_one("r")
    record = {f.path: f for f in ws.current("r").files}  # type: ignore[union-attr]
    old_version_of_a = record["a.py"].extra["version_id"]
    remote.write("a.py", b"a2")
    remote.write("b.py", b"b2")
    second = ws.sync_one("r")
    assert first.version_id != second.version_id
    assert (first.version_id and ("r", first.version_id) in ws.gc().evicted)
    assert [e.refetchable for e in ws.versions("r") if e.version.version_id == first.version_id]\
        == [True]

    mark = conn_env.mark()
    path = ws.path("r", first.version_id)
    seen = conn_env.requests_since(mark)
    assert {p: (path / p).read_bytes() for p in ("a.py", "b.py", "lib/c.py")} == {
        "a.py": b"a1", "b.py": b"b1", "lib/c.py": b"c1"}
    gets = sorted(object_gets(seen))
    # the two files that changed since, each by its recorded VersionId; c.py is still cached
    assert len(gets) == 2 and len(seen) == 2, seen
    assert any(p.startswith(f"/{VERSIONED}/{remote.prefix}/a.py?versionId={old_version_of_a}")
               for p in gets), gets
    assert ws.cache.current_id("r") == second.version_id


def test_version_aware_on_an_unversioned_bucket_admits_no_history(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, PLAIN, version_aware=True)
    remote.write("a.py", b"a1")
    ws = one_repository(remote, tmp_path, keep_versions=1)
    ws.sync_one("r")
    [entry] = ws.versions("r")
    assert entry.refetchable is False


# -- immutable -----------------------------------------------------------------------------------


def test_immutable_repository_that_changes_is_an_error(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, PLAIN)
    remote.write_many({"a.py": b"a", "b.py": b"b"})
    ws = one_repository(remote, tmp_path, immutable=True)
    good = ws.sync_one("r")
    assert not ws.sync_one("r").changed
    remote.write("a.py", b"a, rewritten under the same release URL")
    with pytest.raises(ImmutableSourceChanged, match="immutable"):
        ws.sync_one("r")
    assert ws.cache.current_id("r") == good.version_id
    assert (ws.path("r") / "a.py").read_bytes() == b"a"
    assert "immutable" in (ws.status()[0].last_error or {}).get("message", "")


# -- connections and secrets ----------------------------------------------------------------------


def _assert_no_secret(texts: list[str], cache: Path, *secrets: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text
        for path in cache.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert secret.encode() not in path.read_bytes(), path


def test_connection_uri_with_session_token_and_no_secret_leaks(
    buckets: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dagfetch")
    caplog.set_level(logging.INFO)
    uri = (f"aws://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{buckets.port}"
           f"?use_ssl=false&region_name=us-east-1&aws_session_token={SESSION_TOKEN}")
    monkeypatch.setenv("DAGFETCH_CONN_MOTO_URI", uri)
    remote = S3Remote(buckets, PLAIN)
    remote.entry["conn_id"] = "moto_uri"
    remote.write("a.py", b"a")
    ws = one_repository(remote, tmp_path)
    assert ws.sync_one("r").changed
    ws.sync_one("r")
    # a failing sync too: its message and the recorded last_error must be clean as well
    bad = one_repository(S3Remote(buckets, "no-such-bucket-here"), tmp_path, conn_id="moto_uri")
    with pytest.raises(FetchError) as caught:
        bad.sync_one("r")
    texts = [r.getMessage() for r in caplog.records] + [str(caught.value), repr(caught.value)]
    texts.append(repr(ws.source_for(ws.manifest.get("r"))))
    _assert_no_secret(texts, tmp_path / "cache", SECRET_KEY, SESSION_TOKEN)


def test_bad_option_names_the_field(conn_env: MotoServer, tmp_path: Path) -> None:
    remote = S3Remote(conn_env, PLAIN, concurrency=0)
    with pytest.raises(ManifestError, match=r"dag_repositories\.r\.options\.concurrency"):
        one_repository(remote, tmp_path).sync_one("r")


@pytest.mark.parametrize(("options", "name", "words"), [
    ({"concurrencyy": 8}, "concurrencyy", "unknown option; did you mean 'concurrency'?"),
    ({"config_kwargs": {}}, "config_kwargs", "unknown option"),  # belongs in storage_options
    ({"storage_options": "anon=true"}, "storage_options", "is not a table"),
    ({"version_aware": "yes"}, "version_aware", "is not true or false"),
])
def test_a_misspelt_option_fails_validation_naming_it(
    tmp_path: Path, options: dict[str, Any], name: str, words: str
) -> None:
    """Before anything is fetched (no server here), not at sync time inside aiobotocore."""
    manifest = parse_manifest(
        {"dag_repositories": {"x": {"url": "s3://bucket/dags", "options": options}}}
    )
    with pytest.raises(ManifestError) as caught:
        Workspace(manifest, cache_root=tmp_path / "cache").validate()
    assert caught.value.field == f"dag_repositories.x.options.{name}"
    assert str(caught.value).startswith(f"dag_repositories.x.options.{name}: ")
    assert words in str(caught.value)


def test_storage_options_reach_the_file_system_over_the_connection(
    buckets: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection points at a closed port; ``storage_options`` names the real endpoint
    and wins, so the sync reaches moto."""
    monkeypatch.setenv("DAGFETCH_CONN_MOTO",
                       buckets.connection(endpoint_url="http://127.0.0.1:1"))
    remote = S3Remote(buckets, PLAIN, storage_options={
        "endpoint_url": buckets.endpoint,
        "config_kwargs": {"connect_timeout": 7},
    })
    remote.write_many({"dag.py": b"x = 1\n"})
    ws = one_repository(remote, tmp_path)
    fetcher = ws.fetcher_for(ws.manifest.get("r"))
    try:
        assert fetcher.fs.endpoint_url == buckets.endpoint  # type: ignore[attr-defined]
        # merged over the limits' timeouts: the option's connect_timeout wins
        assert fetcher.fs.config_kwargs == {  # type: ignore[attr-defined]
            "connect_timeout": 7, "read_timeout": 60.0,
            "retries": {"max_attempts": 1, "mode": "standard"}}
    finally:
        fetcher.close()
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "dag.py").read_bytes() == b"x = 1\n"


# -- faults --------------------------------------------------------------------------------------


def test_server_stopped_mid_sync_keeps_current_and_next_sync_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    server = MotoServer(tmp_path / "fault.log")
    server.start()
    try:
        monkeypatch.setenv("DAGFETCH_CONN_MOTO", server.connection())
        server.client().create_bucket(Bucket="faults")
        remote = S3Remote(server, "faults", concurrency=1, retries=2,
                          storage_options={"config_kwargs": {"retries": {"max_attempts": 1}}})
        base = {f"d{i}.py": f"v1 {i}".encode() for i in range(5)}
        remote.write_many(base)
        ws = one_repository(remote, tmp_path)
        good = ws.sync_one("r")
        changed = {f"d{i}.py": f"v2 {i}".encode() for i in range(5)}
        remote.write_many(changed)

        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            ws.sync_one("r", observer=StopAfterFirstFile(server.stop))
        assert time.monotonic() - started < 30
        assert remote.url in str(caught.value) and "download failed" in str(caught.value)
        assert ws.cache.current_id("r") == good.version_id
        assert (ws.path("r") / "d0.py").read_bytes() == b"v1 0"
        status = ws.status()[0]
        assert status.last_error and status.last_error["message"] == str(caught.value)
        assert status.last_success_at is not None and status.current == good.version_id

        server.start()  # moto keeps nothing across a restart: put the new state back
        server.client().create_bucket(Bucket="faults")
        remote.write_many(changed)
        result = ws.sync_one("r")
        assert result.changed
        assert {p: (ws.path("r") / p).read_bytes() for p in changed} == changed
        assert ws.status()[0].last_error is None
    finally:
        server.stop()

