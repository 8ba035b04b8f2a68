"""dagfetch's shared backend suite, run against real archives: on disk (zip+file://), in
fsspec's memory store (zip+memory://) and behind a real HTTP server (zip+http://)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from zip_helpers import MemoryZipRemote, RangeServer, ZipRemote

from dagfetch.testing import FetcherConformance


class TestZipOnDisk(FetcherConformance):
    @pytest.fixture
    def remote(self, tmp_path: Path) -> ZipRemote:
        return ZipRemote(tmp_path / "dags.zip")


class TestZipInMemory(FetcherConformance):
    @pytest.fixture
    def remote(self) -> Iterator[MemoryZipRemote]:
        remote = MemoryZipRemote()
        yield remote
        if remote.fs.exists(remote.key):
            remote.fs.rm(remote.key)


class TestZipOverHttp(FetcherConformance):
    @pytest.fixture
    def remote(self, http_server: RangeServer) -> Iterator[ZipRemote]:
        name = f"{uuid.uuid4().hex}.zip"
        remote = ZipRemote(http_server.root / name, url=f"zip+{http_server.url}/{name}")
        remote.missing_url = f"zip+{http_server.url}/missing-{name}"  # type: ignore[attr-defined]
        yield remote
        remote.path.unlink(missing_ok=True)
