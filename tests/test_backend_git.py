"""The git backend passes the conformance suite on git://, smart HTTP with auth, and file://."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dagfetch.testing import FetcherConformance
from tests.servers.git import HTTP_PASSWORD, HTTP_USER, GitRemote, GitServers, git_servers

__all__ = ["git_servers"]  # the session fixture, imported so pytest finds it

HTTP_CONN = "git_http_ci"


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
