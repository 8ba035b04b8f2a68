"""The versioned local cache.

- :mod:`~dagfetch.cache.layout`: where everything lives under the cache root;
- :mod:`~dagfetch.cache.objects`: files stored once by content, hard-linked into versions;
- :mod:`~dagfetch.cache.records`: the JSON each version and repository keeps about itself;
- :mod:`~dagfetch.cache.store`: publishing versions atomically, ``current``, pins, gc.
"""

from dagfetch.cache.layout import CacheLayout, default_cache_root
from dagfetch.cache.store import GcReport, VersionCache

__all__ = ["CacheLayout", "GcReport", "VersionCache", "default_cache_root"]
