"""Fixtures shared by the backends' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.cache import publish


@pytest.fixture
def cache_read_backs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files the cache reads back to hash them while it publishes a version (none, when
    the fetcher hands over the hashes of what it wrote)."""
    read_back: list[Path] = []
    real = publish.hash_file

    def counting(path: Path, expect_digest: str | None = None) -> tuple[str, int]:
        read_back.append(path)
        return real(path, expect_digest)

    monkeypatch.setattr(publish, "hash_file", counting)
    return read_back
