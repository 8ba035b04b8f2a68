"""Faults and secrets, against real servers: a server dying or stalling mid-fetch, a damaged
pack on the wire or on disk, leftovers of a killed process, a server that is gone, and
credentials that must never leak into logs, errors or the cache."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dagfetch.errors import FetchError, ManifestError
from dagfetch.workspace import Workspace
from tests.backends.git.helpers import REPO, make_ws, store_path, tree_files
from tests.checkout import ROOT
from tests.servers.git import (
    HTTP_PASSWORD,
    HTTP_USER,
    GitRemote,
    GitServers,
    free_port,
)

BASE = {"dag_a.py": b"# a\n" * 50, "lib/util.py": b"X = 1\n" * 50}
NEXT = {"dag_a.py": b"# a, next\n" * 50, "dag_b.py": b"# b\n" * 300}


@pytest.fixture
def http_remote(git_servers: GitServers, tmp_path: Path) -> GitRemote:
    return GitRemote.create(git_servers.root, tmp_path, git_servers.http_open.url)


def seed(remote: GitRemote, files: dict[str, bytes]) -> str:
    for path, data in files.items():
        remote.write(path, data)
    return remote.push()


def leftovers(ws: Workspace) -> list[str]:
    """Lock files, half-written packs and spool files in the git store, plus staging."""
    found = []
    for dirpath, _, names in os.walk(store_path(ws)):
        for name in names:
            if name.endswith(".lock") or name.startswith(("tmp_pack_", "incoming-")):
                found.append(name)
            if name.endswith(".pack") and not os.path.exists(
                os.path.join(dirpath, name[:-5] + ".idx")
            ):
                found.append(name)
    staging = ws.cache.layout.staging(REPO)
    if staging.exists():
        found += [p.name for p in staging.iterdir()]
    return found


def assert_recovers(ws: Workspace, remote: GitRemote, good: str) -> None:
    assert ws.cache.current_id(REPO) == good
    assert tree_files(ws.path(REPO)) == BASE
    assert ws.status()[0].last_error is not None
    result = ws.sync_one(REPO)
    assert result.changed and result.version_id == remote.head()
    assert tree_files(ws.path(REPO)) == {**BASE, **NEXT}
    assert ws.status()[0].last_error is None
    assert leftovers(ws) == []


def test_server_gone_mid_fetch(
    http_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    seed(http_remote, BASE)
    ws = make_ws(http_remote, tmp_path)
    good = ws.sync_one(REPO).version_id
    seed(http_remote, NEXT)
    git_servers.http_open.break_after = 300
    with pytest.raises(FetchError) as caught:
        ws.sync_one(REPO)
    assert http_remote.bare.name in str(caught.value)
    assert leftovers(ws) == []
    assert_recovers(ws, http_remote, good)


def test_damaged_pack_from_the_server(
    http_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    seed(http_remote, BASE)
    ws = make_ws(http_remote, tmp_path)
    good = ws.sync_one(REPO).version_id
    seed(http_remote, NEXT)
    git_servers.http_open.corrupt_pack = True
    # the store is rebuilt and the fetch tried once more, which succeeds: the damage was
    # in transit. Make it damage the second try too, so the error shows
    server = git_servers.http_open
    original = server._handle

    def always_corrupt(handler):  # type: ignore[no-untyped-def]
        server.corrupt_pack = True
        original(handler)

    server._handle = always_corrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(FetchError, match="damaged"):
            ws.sync_one(REPO)
    finally:
        server._handle = original  # type: ignore[method-assign]
        server.corrupt_pack = False
    assert leftovers(ws) == []
    assert_recovers(ws, http_remote, good)


def test_damaged_local_store_is_rebuilt(
    http_remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(http_remote, BASE)
    ws = make_ws(http_remote, tmp_path)
    ws.sync_one(REPO)
    for pack in (store_path(ws) / "objects" / "pack").glob("*.pack"):
        data = bytearray(pack.read_bytes())
        for i in range(20, len(data) - 20, 7):
            data[i] ^= 0x5A
        os.chmod(pack, 0o644)
        pack.write_bytes(bytes(data))
    seed(http_remote, NEXT)
    with caplog.at_level(logging.WARNING):
        result = ws.sync_one(REPO)
    assert result.changed and tree_files(ws.path(REPO)) == {**BASE, **NEXT}
    assert "rebuilding" in caplog.text


def test_leftovers_of_a_killed_process_are_cleaned(http_remote: GitRemote, tmp_path: Path) -> None:
    seed(http_remote, BASE)
    ws = make_ws(http_remote, tmp_path)
    ws.sync_one(REPO)
    store = store_path(ws)
    # what a SIGKILL at the wrong moment leaves: dulwich's lock files, a half-written pack
    for name in ("refs/heads/dagfetch-tip.lock", "shallow.lock", "packed-refs.lock",
                 "objects/tmp_pack_abc123", "objects/pack/pack-" + "0" * 40 + ".pack"):
        (store / name).write_bytes(b"partial")
    seed(http_remote, NEXT)
    assert ws.sync_one(REPO).changed
    assert tree_files(ws.path(REPO)) == {**BASE, **NEXT}
    assert leftovers(ws) == []


CHILD = """
import sys
from dagfetch.workspace import Workspace
Workspace.from_manifest(sys.argv[1], cache_root=sys.argv[2]).sync_one("dags")
"""


def test_sigkill_mid_fetch_then_sync_recovers(
    http_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    seed(http_remote, BASE)
    manifest = tmp_path / "dagfetch.json"
    manifest.write_text(json.dumps({"dag_repositories": {REPO: {"url": http_remote.url}}}))
    ws = Workspace.from_manifest(manifest, cache_root=tmp_path / "cache")
    good = ws.sync_one(REPO).version_id
    seed(http_remote, NEXT)
    server = git_servers.http_open
    server.stalled.clear()
    server.release.clear()
    server.stall_after = 300
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(manifest), str(tmp_path / "cache")],
                             cwd=ROOT)
    try:
        assert server.stalled.wait(30), "the child never reached the pack"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        server.release.set()
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert ws.cache.current_id(REPO) == good
    result = ws.sync_one(REPO)  # no manual clean-up: the kernel released the locks
    assert result.changed and tree_files(ws.path(REPO)) == {**BASE, **NEXT}
    assert leftovers(ws) == []


def test_server_down_is_a_clear_error(http_remote: GitRemote, tmp_path: Path) -> None:
    seed(http_remote, BASE)
    ws = make_ws(http_remote, tmp_path)
    good = ws.sync_one(REPO).version_id
    dead = f"git://127.0.0.1:{free_port()}/{http_remote.bare.name}"
    down = make_ws(http_remote, tmp_path, url=dead)
    with pytest.raises(FetchError, match="cannot reach the server") as caught:
        down.sync_one(REPO)
    assert "127.0.0.1" in str(caught.value)
    assert down.cache.current_id(REPO) == good


# -- credentials -----------------------------------------------------------------------------


@pytest.fixture
def auth_remote(git_servers: GitServers, tmp_path: Path) -> GitRemote:
    return GitRemote.create(git_servers.root, tmp_path, git_servers.http.url)


def test_http_without_credentials_says_what_to_do(auth_remote: GitRemote, tmp_path: Path) -> None:
    seed(auth_remote, BASE)
    with pytest.raises(FetchError, match=r"401.*set conn_id"):
        make_ws(auth_remote, tmp_path).sync_one(REPO)


def test_wrong_password_names_the_connection_not_the_password(
    auth_remote: GitRemote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(auth_remote, BASE)
    wrong = "wrong-password-8d2f1c"
    monkeypatch.setenv("DAGFETCH_CONN_GIT_BAD", json.dumps({"login": HTTP_USER, "password": wrong}))
    with pytest.raises(FetchError, match="connection 'git_bad'") as caught:
        make_ws(auth_remote, tmp_path, conn_id="git_bad").sync_one(REPO)
    assert wrong not in str(caught.value)


def test_credentials_never_reach_logs_errors_or_the_cache(
    auth_remote: GitRemote, git_servers: GitServers, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DAGFETCH_CONN_GIT_OK", json.dumps({"login": HTTP_USER,
                                                           "password": HTTP_PASSWORD}))
    seed(auth_remote, BASE)
    ws = make_ws(auth_remote, tmp_path, conn_id="git_ok", keep_versions=1)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        ws.sync_one(REPO)
        seed(auth_remote, NEXT)
        git_servers.http.break_after = 100
        try:
            ws.sync_one(REPO)
        except FetchError as exc:
            errors.append(str(exc))
        ws.sync_one(REPO)
        ws.gc()
        ws.path(REPO, ws.versions(REPO)[-1].version.version_id)
    assert errors, "the injected failure did not happen"
    assert any(auth for _, _, auth in git_servers.http.requests)
    basic = base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()
    for secret in (HTTP_PASSWORD, basic):
        assert secret not in caplog.text
        assert not any(secret in e for e in errors)
        for dirpath, _, names in os.walk(ws.cache.root):
            for name in names:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    assert secret.encode() not in path.read_bytes(), path


def test_password_in_the_url_is_refused(auth_remote: GitRemote, tmp_path: Path) -> None:
    url = auth_remote.url.replace("://", f"://{HTTP_USER}:{HTTP_PASSWORD}@")
    ws = make_ws(auth_remote, tmp_path, url=url)
    with pytest.raises(ManifestError, match=r"dags\.url.*conn_id") as caught:
        ws.validate()
    assert HTTP_PASSWORD not in str(caught.value)
