"""Safety limits against zip bombs, and the rest of the manifest entry's ``options``.

A zip bomb is small on the wire and huge once inflated: one highly compressible member
(``max_member_size``, ``max_ratio``), many of them (``max_total_size``), or a central
directory with millions of entries (``max_members``). Every limit is checked from the
central directory before a byte of member data is read, and extraction counts the bytes
it writes instead of trusting the header.

The options are declared with dagfetch's :func:`dagfetch.options.option`, so a bad or unknown
one fails validation naming ``dag_repositories.<id>.options.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from dagfetch.options import option

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 256 * 1024


@attrs.frozen
class Limits:
    max_member_size: int = option(
        100 * MiB, gt=0, help="bytes, per member, uncompressed"
    )
    max_total_size: int = option(1024 * MiB, gt=0, help="bytes, all members together")
    max_ratio: float = option(
        100.0, gt=0, help="uncompressed:compressed, for members of ratio_min_size or more"
    )
    # a small member may compress absurdly well (a file of blank lines); the members
    # together may not: max_ratio holds for their sum as soon as it reaches ratio_min_size
    ratio_min_size: int = option(
        1 * MiB, gt=0,
        help="smaller members are exempt from max_ratio one by one, never all together",
    )
    max_members: int = option(20_000, gt=0, help="entries in the archive")


@attrs.frozen
class ZipOptions(Limits):
    """The whole ``options`` table: the limits, plus how the archive is read."""

    block_size: int = option(DEFAULT_BLOCK_SIZE, gt=0, help="bytes per ranged read")
    storage_options: Mapping[str, Any] = option(
        {}, help="keyword arguments for the inner store's fsspec file system"
    )


def human(nbytes: int) -> str:
    if nbytes >= MiB:
        return f"{nbytes / MiB:.1f} MiB"
    return f"{nbytes} bytes"
