"""The git backend's manifest ``options``, declared through :mod:`dagfetch.options`."""

from __future__ import annotations

from typing import Literal

import attrs

from dagfetch.options import option

DEFAULT_TIMEOUT = 60.0


@attrs.frozen
class GitOptions:
    """One git repository's ``options`` table; any other key is refused by name."""

    depth: int = option(1, ge=0, help="history fetched with each commit; 0 = full history")
    submodules: Literal["error", "skip"] = option(
        "error", help="'error' refuses a tree with a submodule, naming it; 'skip' leaves it out"
    )
    lfs: Literal["error", "warn", "skip"] = option(
        "error",
        help="Git LFS pointer files: 'error' names them, 'skip' leaves them out, 'warn' takes "
        "the pointer files as they are",
    )
    timeout: float = option(DEFAULT_TIMEOUT, gt=0, help="seconds, for HTTP requests")
    protocol_version: int | None = option(
        None, choices=(0, 1, 2), help="git's wire protocol (not set: the highest both speak)"
    )
