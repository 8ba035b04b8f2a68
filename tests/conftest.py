"""Shared fixtures. The test servers (tests/servers/) start on 127.0.0.1 only, once per session,
and are registered here once, so a test names the fixture it needs and imports nothing."""

from __future__ import annotations

import os

os.environ.setdefault("DAGFETCH_HOME", os.path.join(os.path.dirname(__file__), ".never-used"))

pytest_plugins = [
    "tests.servers.azure",
    "tests.servers.gcs",
    "tests.servers.git",
    "tests.servers.git_ssh",
    "tests.servers.hostile",
    "tests.servers.http",
    "tests.servers.s3",
]
