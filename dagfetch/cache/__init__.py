"""The versioned local cache.

- :mod:`~dagfetch.cache.layout`: where everything lives under the cache root;
- :mod:`~dagfetch.cache.locks`: one lock per repository, one for the object store;
- :mod:`~dagfetch.cache.objects`: files stored once by content, hard-linked into versions;
- :mod:`~dagfetch.cache.metadata`: JSON files written atomically, read with damage named;
- :mod:`~dagfetch.cache.records`: each version's record, each repository's state and ``current``;
- :mod:`~dagfetch.cache.pins`: versions callers asked to keep;
- :mod:`~dagfetch.cache.trees`: building, sealing and removing version trees;
- :mod:`~dagfetch.cache.publish`: staging, verifying downloads, publishing a version;
- :mod:`~dagfetch.cache.gc`: evicting versions, storing idle trees, sweeping contents;
- :mod:`~dagfetch.cache.audit`: hashing contents against records (``dagfetch verify``);
- :mod:`~dagfetch.cache.store`: :class:`VersionCache`, the facade over all of them.
"""

from typing import TYPE_CHECKING, Any

from dagfetch.cache.layout import CacheLayout, default_cache_root
from dagfetch.cache.records import VersionRecord
from dagfetch.cache.store import VersionCache

if TYPE_CHECKING:
    from dagfetch.cache.gc import GcReport


def __getattr__(name: str) -> Any:
    if name == "GcReport":  # gc is imported when asked for: a sync does not use it
        from dagfetch.cache.gc import GcReport

        return GcReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CacheLayout", "GcReport", "VersionCache", "VersionRecord", "default_cache_root"]
