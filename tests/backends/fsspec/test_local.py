"""The built-in fsspec backend passes the conformance suite on file:// and memory://."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from dagfetch.testing import FetcherConformance, LocalRemote


class MemoryRemote:
    unsafe_names = True
    symlinks = False

    def __init__(self) -> None:
        self.fs = fsspec.filesystem("memory")
        self.root = f"/conformance-{uuid.uuid4().hex}"
        self.url = f"memory://{self.root}"
        self.missing_url = f"memory:///missing-{uuid.uuid4().hex}"
        self.entry: dict[str, Any] = {}

    def write(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/{path}", data)

    def delete(self, path: str) -> None:
        self.fs.rm_file(f"{self.root}/{path}")

    def push(self) -> None:
        return None


class TestFileBackend(FetcherConformance):
    @pytest.fixture
    def remote(self, tmp_path: Path) -> LocalRemote:
        remote = LocalRemote(tmp_path / "remote")
        remote.missing_url = (tmp_path / "nowhere").as_uri()  # type: ignore[attr-defined]
        return remote


class TestMemoryBackend(FetcherConformance):
    @pytest.fixture
    def remote(self) -> Iterator[MemoryRemote]:
        remote = MemoryRemote()
        yield remote
        if remote.fs.exists(remote.root):
            remote.fs.rm(remote.root, recursive=True)
