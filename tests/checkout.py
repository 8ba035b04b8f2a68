"""Where the checkout is, for tests that read its files (README, docs) or run its commands."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
