"""The git backend passes the conformance suite on git://, smart HTTP with auth, SSH with a
key and a host key, and file://."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from dagfetch.errors import FetchError
from dagfetch.testing import FetcherConformance
from tests.backends.git.helpers import REPO, make_ws
from tests.servers.git import HTTP_PASSWORD, HTTP_USER, GitRemote, GitServers
from tests.servers.git_ssh import GitSshServer

HTTP_CONN = "git_http_ci"
SSH_CONN = "git_ssh_ci"


def http_connection_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DAGFETCH_CONN_GIT_HTTP_CI",
        json.dumps({"conn_type": "git", "login": HTTP_USER, "password": HTTP_PASSWORD}),
    )


class TestGitDaemon(FetcherConformance):
    @pytest.fixture
    def remote(self, git_servers: GitServers, tmp_path: Path) -> GitRemote:
        return GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)


class TestGitSmartHttpWithAuth(FetcherConformance):
    @pytest.fixture
    def remote(
        self, git_servers: GitServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> GitRemote:
        http_connection_env(monkeypatch)
        return GitRemote.create(git_servers.root, tmp_path, git_servers.http.url,
                                entry={"conn_id": HTTP_CONN})


class TestGitFile(FetcherConformance):
    @pytest.fixture
    def remote(self, git_servers: GitServers, tmp_path: Path) -> GitRemote:
        return GitRemote.create(git_servers.root, tmp_path, git_servers.file_url)


def ssh_connection_env(monkeypatch: pytest.MonkeyPatch, server: GitSshServer,
                       known_hosts: str | None = None, key: str | None = None) -> None:
    monkeypatch.setenv("DAGFETCH_CONN_GIT_SSH_CI", json.dumps({
        "login": "git",
        "extra": {"private_key": key or server.client_private_key,
                  "known_hosts": known_hosts or server.known_hosts},
    }))


class TestGitSsh(FetcherConformance):
    @pytest.fixture
    def remote(
        self, git_servers: GitServers, git_ssh: GitSshServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> GitRemote:
        ssh_connection_env(monkeypatch, git_ssh)
        return GitRemote.create(git_servers.root, tmp_path, git_ssh.url,
                                entry={"conn_id": SSH_CONN})


# -- SSH specifics -----------------------------------------------------------------------------


def _ssh_remote(git_servers: GitServers, git_ssh: GitSshServer, tmp_path: Path) -> GitRemote:
    remote = GitRemote.create(git_servers.root, tmp_path, git_ssh.url,
                              entry={"conn_id": SSH_CONN})
    remote.write("dag.py", b"# d\n")
    remote.push()
    return remote


def test_ssh_key_and_host_key_are_used(
    git_servers: GitServers, git_ssh: GitSshServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    remote = _ssh_remote(git_servers, git_ssh, tmp_path)
    ssh_connection_env(monkeypatch, git_ssh)
    ws = make_ws(remote, tmp_path)
    with caplog.at_level(logging.DEBUG):
        assert ws.sync_one(REPO).version_id == remote.head()
    key_body = git_ssh.client_private_key.splitlines()[1]
    assert key_body not in caplog.text
    for dirpath, _, names in os.walk(ws.cache.root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_symlink():
                assert key_body.encode() not in path.read_bytes(), path


def test_ssh_wrong_host_key_is_refused(
    git_servers: GitServers, git_ssh: GitSshServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncssh

    remote = _ssh_remote(git_servers, git_ssh, tmp_path)
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    ssh_connection_env(monkeypatch, git_ssh, known_hosts=f"[127.0.0.1]:{git_ssh.port} {impostor}")
    with pytest.raises(FetchError, match=r"(?i)host key"):
        make_ws(remote, tmp_path).sync_one(REPO)


def test_ssh_unknown_client_key_is_refused(
    git_servers: GitServers, git_ssh: GitSshServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncssh

    remote = _ssh_remote(git_servers, git_ssh, tmp_path)
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    ssh_connection_env(monkeypatch, git_ssh, key=stranger)
    with pytest.raises(FetchError, match=r"(?i)permission denied"):
        make_ws(remote, tmp_path).sync_one(REPO)
