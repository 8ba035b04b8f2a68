"""The HTTP backend against a server that lies, stalls, resets and never stops
(tests/servers/hostile.py), and against files changed between the listing and the GET."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from dagfetch.backends.fsspec.downloads import is_transient
from dagfetch.errors import ChangedDuringSync, FetchError, LimitExceeded, VerificationError
from dagfetch.testing import one_repository
from dagfetch.workspace import Workspace
from tests.backends.fsspec.hooks import sync_with_hook
from tests.backends.fsspec.test_http import HttpRemote, http
from tests.servers.hostile import Behaviour, HostileServer
from tests.servers.http import StaticServer
from tests.servers.procs import free_port

MiB = 1024 * 1024
__all__ = ["http"]  # the fixture shared with the main HTTP tests


def workspace(server: HostileServer, tmp_path: Path, **limits: object) -> Workspace:
    return one_repository(f"{server.url}/repo/", tmp_path, options={"retries": 1},
                          limits=limits)


def test_a_server_lying_about_a_size_is_stopped_at_the_listed_size(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.files["repo/a.py"] = Behaviour(b"a = 1\n")
    hostile_server.files["repo/big.py"] = Behaviour(
        b"tiny", mode="lying", listed_size=10, stream_bytes=256 * MiB)
    ws = workspace(hostile_server, tmp_path)
    with pytest.raises(VerificationError, match="more than the 10 bytes"):
        ws.sync_one("r")
    # it stopped reading at the first chunk past 10 bytes, not after 256 MiB
    assert hostile_server.sent < 16 * MiB
    assert ws.cache.current_id("r") is None


def test_an_endless_body_stops_at_max_file_bytes_naming_file_and_field(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.files["repo/endless.py"] = Behaviour(b"e", mode="endless", listed_size=-1)
    ws = workspace(hostile_server, tmp_path, max_file_bytes=MiB)
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.path == "endless.py"
    assert caught.value.field == "dag_repositories.r.limits.max_file_bytes"
    assert hostile_server.sent < 32 * MiB


def test_a_stalled_download_ends_at_read_timeout(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.files["repo/slow.py"] = Behaviour(b"s" * 1000, mode="stall")
    ws = workspace(hostile_server, tmp_path, read_timeout=0.5)
    with pytest.raises(FetchError, match=r"slow\.py"):
        ws.sync_one("r")
    assert ws.cache.current_id("r") is None


def test_a_whole_sync_ends_at_sync_timeout(hostile_server: HostileServer, tmp_path: Path) -> None:
    hostile_server.files["repo/slow.py"] = Behaviour(b"s" * 1000, mode="stall")
    ws = workspace(hostile_server, tmp_path, sync_timeout=1, read_timeout=600)
    with pytest.raises(FetchError, match=r"limits\.sync_timeout"):
        ws.sync_one("r")


def test_a_reset_connection_fails_the_sync_and_the_next_one_succeeds(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.files["repo/a.py"] = Behaviour(b"a" * 4000, mode="reset")
    ws = workspace(hostile_server, tmp_path)
    with pytest.raises(FetchError, match=r"a\.py"):
        ws.sync_one("r")
    assert ws.cache.current_id("r") is None
    hostile_server.files["repo/a.py"] = Behaviour(b"a" * 4000)
    ws.sync_one("r")
    assert (ws.path("r") / "a.py").read_bytes() == b"a" * 4000


def test_a_folder_loop_ends_at_max_path_depth(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.loops.add("repo")
    ws = workspace(hostile_server, tmp_path, max_path_depth=20)
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.field == "dag_repositories.r.limits.max_path_depth"
    assert len(hostile_server.gets) <= 21


def test_max_http_folders_bounds_the_pages_a_listing_visits(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    hostile_server.loops.add("repo")
    ws = workspace(hostile_server, tmp_path, max_http_folders=5)
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.field == "dag_repositories.r.limits.max_http_folders"
    assert len(hostile_server.gets) <= 6


def test_a_file_changed_between_listing_and_download_is_not_recorded(
    http: StaticServer, tmp_path: Path
) -> None:
    remote = HttpRemote(http)
    remote.write("dag.py", b"state = 'A'\n")
    ws = one_repository(remote, tmp_path)
    with pytest.raises(ChangedDuringSync, match="changed during the sync"):
        sync_with_hook(ws, "r", lambda: remote.write("dag.py", b"state = 'B'\n"))
    assert ws.cache.current_id("r") is None
    remote.write("dag.py", b"state = 'A'\n")
    ws.sync_one("r")
    assert (ws.path("r") / "dag.py").read_bytes() == b"state = 'A'\n"


def test_a_refused_connection_is_not_retried() -> None:
    """The real error aiohttp raises for a port nothing listens on is not worth a retry."""

    async def connect() -> BaseException:
        async with aiohttp.ClientSession() as session:
            try:
                await session.get(f"http://127.0.0.1:{free_port()}/")
            except aiohttp.ClientError as exc:
                return exc
        raise AssertionError("connected to a closed port")

    refused = asyncio.run(connect())
    assert not is_transient(refused)
    assert is_transient(aiohttp.ServerDisconnectedError())


def test_bodies_of_unknown_size_stop_at_max_version_bytes_together(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    """No index gives a size and each file is under max_file_bytes: the version's total is
    the bound, counted as the bytes arrive."""
    for i in range(4):
        hostile_server.files[f"repo/f{i}.py"] = Behaviour(
            b"z" * (400 * 1024), mode="lying", listed_size=-1, stream_bytes=400 * 1024)
    ws = one_repository(f"{hostile_server.url}/repo/", tmp_path,
                        options={"retries": 1, "concurrency": 1},
                        limits={"max_version_bytes": MiB})
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.field == "dag_repositories.r.limits.max_version_bytes"
    assert hostile_server.sent < 2 * MiB
    assert ws.cache.current_id("r") is None


def test_a_retried_download_counts_its_bytes_once(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    """A file reset half-way and fetched again on the retry: its first half is given back
    to the version's budget, so a version just under max_version_bytes still syncs."""
    data = b"r" * (600 * 1024)
    hostile_server.files["repo/big.py"] = Behaviour(data, mode="reset", resets_left=1)
    ws = one_repository(f"{hostile_server.url}/repo/", tmp_path, options={"retries": 2},
                        limits={"max_version_bytes": 700 * 1024})
    ws.sync_one("r")
    assert (ws.path("r") / "big.py").read_bytes() == data
