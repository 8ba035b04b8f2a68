"""s3fs's client made cheaper per request (dagfetch.backends.fsspec.s3client), against a real
moto_server: every timestamp of a listing and a download goes through the fast parser and
none through dateutil, with the same instants; the User-Agent header sent is the one botocore
builds, built once per set of feature ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfetch.backends.fsspec.s3client import speed_up
from dagfetch.backends.fsspec.timestamps import FastTimestamps
from dagfetch.testing import one_repository
from tests.backends.fsspec.test_s3 import PLAIN, S3Remote, buckets, conn_env  # noqa: F401
from tests.backends.fsspec.test_s3_hostile import tree
from tests.servers.proxy import counting_proxy
from tests.servers.s3 import MotoServer


@pytest.mark.parametrize("value", [
    "2026-12-01T16:34:54.000Z", "2026-12-01T16:34:54Z", "2026-12-01T16:34:54.123456Z",
    "Tue, 01 Dec 2026 16:34:54 GMT", "2026-12-01T16:34:54+02:00", 1_700_000_000,
])
def test_fast_timestamps_are_the_instants_botocore_parses(value: object) -> None:
    from botocore.utils import parse_timestamp

    fast = FastTimestamps(parse_timestamp)(value)
    assert fast == parse_timestamp(value) and fast.tzinfo is not None


def test_a_sync_parses_every_timestamp_fast_and_none_by_dateutil(
    conn_env: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import botocore.parsers

    # what each response parser falls back on (dateutil), counted; and the fast parser's calls
    fallback = botocore.parsers.DEFAULT_TIMESTAMP_PARSER
    slow: list[object] = []
    fast: list[object] = []

    def counted_fallback(value: Any) -> Any:
        slow.append(value)
        return fallback(value)

    fast_call = FastTimestamps.__call__

    def counted_fast(self: FastTimestamps, value: Any) -> Any:
        fast.append(value)
        return fast_call(self, value)

    monkeypatch.setattr(botocore.parsers, "DEFAULT_TIMESTAMP_PARSER", counted_fallback)
    monkeypatch.setattr(FastTimestamps, "__call__", counted_fast)
    remote = S3Remote(conn_env, PLAIN)
    remote.write_many({"dags/a.py": b"a", "dags/b.py": b"bb", "dags/c.py": b"ccc"})
    ws = one_repository(remote, tmp_path)
    result = ws.sync_one("r")
    assert result.downloaded == 3
    assert (ws.path("r") / "dags/b.py").read_bytes() == b"bb"
    # 3 listed keys' LastModified and 3 GETs' Last-Modified, all in the forms S3 writes
    assert len(fast) >= 6 and slow == []


def test_the_listed_last_modified_is_the_instant_head_object_gives(
    conn_env: MotoServer, tmp_path: Path  # noqa: F811
) -> None:
    remote = S3Remote(conn_env, PLAIN)
    remote.write("dags/a.py", b"a")
    ws = one_repository(remote, tmp_path)
    fetcher = ws.fetcher_for(ws.manifest.get("r"))
    assert [f.path for f in fetcher.list().files] == ["dags/a.py"]
    fs = fetcher.fs  # type: ignore[attr-defined]
    fs.invalidate_cache()
    listed = fs.info(f"{PLAIN}/{remote.key('dags/a.py')}")["LastModified"]
    head = remote.client.head_object(Bucket=PLAIN, Key=remote.key("dags/a.py"))
    assert listed == head["LastModified"]


def test_the_user_agent_sent_is_botocores_own_built_once_per_feature_set(
    conn_env: MotoServer, tmp_path: Path  # noqa: F811
) -> None:
    from botocore.context import start_as_current_context
    from botocore.useragent import register_feature_id

    remote = S3Remote(conn_env, PLAIN)
    remote.write_many({f"dags/{i}.py": b"x" * i for i in range(4)})
    ws = one_repository(remote, tmp_path)
    fetcher = ws.fetcher_for(ws.manifest.get("r"))
    fetcher.list()  # the client is made, and sped up, on first use
    client = fetcher.fs.s3  # type: ignore[attr-defined]
    creator = client._user_agent_creator
    build = type(creator).to_string  # botocore's own, building the string each time

    # what botocore itself would put in the header of each request, and what was sent
    sent: list[tuple[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        header = request.headers["User-Agent"]
        sent.append((header.decode() if isinstance(header, bytes) else header, build(creator)))

    client.meta.events.register("before-send.s3", capture)
    try:
        ws.sync_one("r")
    finally:
        client.meta.events.unregister("before-send.s3", capture)
    assert len(sent) >= 5  # the listing and 4 GETs
    assert all(header == botocores for header, botocores in sent)

    # built once per feature set (the same object again), each the string botocore builds
    speed_up(client)  # a second call changes nothing
    with start_as_current_context():
        register_feature_id("PAGINATOR")
        with_feature = creator.to_string()
        assert with_feature == build(creator) and creator.to_string() is with_feature
    plain = creator.to_string()
    assert plain == build(creator) and plain != with_feature and creator.to_string() is plain


def test_the_parser_factory_keeps_the_rest_of_botocores_factory() -> None:
    import copy

    from botocore.parsers import ResponseParserFactory

    from dagfetch.backends.fsspec.s3client import FastParsers

    factory = FastParsers(ResponseParserFactory())
    factory.set_parser_defaults(blob_parser=bytes)  # delegated to botocore's factory
    parser = factory.create_parser("rest-xml")
    assert parser._blob_parser is bytes and isinstance(parser._timestamp_parser, FastTimestamps)
    assert factory.create_parser("rest-xml")._timestamp_parser is parser._timestamp_parser
    assert isinstance(copy.copy(factory).create_parser("rest-xml")._timestamp_parser,
                      FastTimestamps)


@pytest.mark.parametrize("concurrency", [4, 16])
def test_a_sync_keeps_as_many_requests_in_flight_as_its_concurrency(
    buckets: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    concurrency: int,
) -> None:
    # botocore's pool holds 10 connections: `concurrency = 16` used to mean 10 at once
    remote = S3Remote(buckets, PLAIN, concurrency=concurrency)
    files = {f"dags/f{i:02}.py": b"x = %d\n" % i for i in range(48)}
    remote.write_many(files)
    with counting_proxy(buckets.port, delay=0.05) as proxy:
        monkeypatch.setenv("DAGFETCH_CONN_MOTO", buckets.connection(endpoint_url=proxy.endpoint))
        ws = one_repository(remote, tmp_path)
        assert ws.sync_one("r").downloaded == len(files)
    assert tree(ws.path("r")) == files
    assert proxy.most_in_flight == concurrency
