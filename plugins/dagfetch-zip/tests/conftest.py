"""Fixtures for the zip backend's tests (helpers live in zip_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from zip_helpers import RangeServer


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeServer]:
    server = RangeServer(tmp_path_factory.mktemp("http-root"))
    yield server
    server.stop()
