"""Faster timestamps for botocore's response parser (s3fs's client).

botocore parses every timestamp it is given (each listed key's ``LastModified``, each GET's
``Last-Modified`` header) with dateutil's general-purpose parser: about half a millisecond of
CPU each on a loaded machine, the largest client-side cost of listing a bucket (10,000 keys:
seconds, more than dagfetch's own work on the listing) and a tenth of a small object's GET.
S3 writes them in two fixed forms, ISO 8601 in XML bodies (``2026-12-01T16:34:54.000Z``) and
the HTTP date in headers (``Tue, 01 Dec 2026 16:34:54 GMT``); those are parsed by the standard
library into the same instant, timezone-aware as botocore's are, and anything else goes to the
parser botocore had. :mod:`~dagfetch.backends.fsspec.s3client` gives them to s3fs's client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

Parse = Callable[[Any], Any]


class FastTimestamps:
    """A botocore timestamp parser: the two forms S3 uses by the standard library, any other
    value by ``fallback``."""

    def __init__(self, fallback: Parse) -> None:
        self.fallback = fallback

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                if value.endswith("Z") and "T" in value:
                    return datetime.fromisoformat(value[:-1]).replace(tzinfo=timezone.utc)
                if value.endswith(" GMT"):
                    return parsedate_to_datetime(value)
            except (ValueError, TypeError, IndexError):
                pass
        return self.fallback(value)

