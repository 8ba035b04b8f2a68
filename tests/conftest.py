"""Shared fixtures. Backend servers live in tests/servers/ and start on 127.0.0.1 only."""

from __future__ import annotations

import os

os.environ.setdefault("DAGFETCH_HOME", os.path.join(os.path.dirname(__file__), ".never-used"))
