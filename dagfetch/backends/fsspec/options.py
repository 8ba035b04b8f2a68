"""The fsspec backend's manifest ``options``, declared through :mod:`dagfetch.options`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from dagfetch.options import option

DEFAULT_CONCURRENCY = 16
DEFAULT_RETRIES = 3  # four attempts in all, as before retries meant retries


@attrs.frozen
class FsspecOptions:
    """One repository's ``options`` table. Anything meant for the fsspec file system itself
    goes under ``storage_options``; any other key is refused by name."""

    concurrency: int = option(DEFAULT_CONCURRENCY, ge=1, help="downloads in flight at once")
    retries: int = option(
        DEFAULT_RETRIES,
        ge=0,
        help="retries per request after the first attempt, on throttling, 5xx and "
        "connection errors, with exponential backoff; 0 = no retry",
    )
    timeout: float | None = option(
        None,
        gt=0,
        help="seconds a listing or one whole download batch may take, retries included "
        "(not set: no limit)",
    )
    version_aware: bool = option(
        False,
        help="read object versions (S3 versioning, GCS generations, Azure versions) so an "
        "evicted version can be fetched again exactly",
    )
    storage_options: Mapping[str, Any] = option(
        {},
        help="keyword arguments for the fsspec file system, over those mapped from conn_id",
    )
