"""Safety limits against zip bombs, read from the manifest entry's ``options``.

A zip bomb is small on the wire and huge once inflated: one highly compressible member
(``max_member_size``, ``max_ratio``), many of them (``max_total_size``), or a central
directory with millions of entries (``max_members``). Every limit is checked from the
central directory before a byte of member data is read, and extraction counts the bytes
it writes instead of trusting the header.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import attrs

from dagfetch.errors import ManifestError

MiB = 1024 * 1024


@attrs.frozen
class Limits:
    max_member_size: int = 100 * MiB
    max_total_size: int = 1024 * MiB
    max_ratio: float = 100.0
    # small members may compress absurdly well (a file of blank lines) and cannot hurt
    ratio_min_size: int = 1 * MiB
    max_members: int = 20_000

    @classmethod
    def pop_from(cls, options: MutableMapping[str, Any], field: str) -> Limits:
        """Take the limit options out of ``options`` (the rest goes to fsspec). ``field`` is
        the manifest path of the options table, for errors."""
        values: dict[str, Any] = {}
        for a in attrs.fields(cls):
            if a.name not in options:
                continue
            value = options.pop(a.name)
            wanted = float if a.name == "max_ratio" else int
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (wanted is int and not float(value).is_integer())
                or value <= 0
            ):
                raise ManifestError(
                    f"{field}.{a.name}",
                    f"must be a positive {'number' if wanted is float else 'integer'}, "
                    f"got {value!r}",
                )
            values[a.name] = wanted(value)
        return cls(**values)


def human(nbytes: int) -> str:
    if nbytes >= MiB:
        return f"{nbytes / MiB:.1f} MiB"
    return f"{nbytes} bytes"
