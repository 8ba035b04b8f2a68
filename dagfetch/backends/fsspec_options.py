"""Deprecated: the mapping of connections to storage options moved to :mod:`dagfetch.storage`.

Kept importable because the 0.1.0 plugin guide told plugin authors to import
``storage_options`` from here; use ``from dagfetch.storage import storage_options``.
"""

import warnings

from dagfetch.storage import storage_options

warnings.warn(
    "dagfetch.backends.fsspec_options is deprecated; import storage_options from "
    "dagfetch.storage instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["storage_options"]
