"""What dagfetch knows about fsspec stores, in one place for every reader and writer of an
fsspec URL: the fsspec backend, plugins over fsspec (dagfetch-zip) and the cache.

- :mod:`~dagfetch.storage.families`: the one table of store families (S3, GCS, Azure, HTTP,
  local/memory): protocols, the dagfetch extra installing each, versioned paths, per-download
  arguments, how each is listed;
- :mod:`~dagfetch.storage.connections`: a ``conn_id`` connection -> storage options, per store;
- :mod:`~dagfetch.storage.tokens`: a listed object's info -> change token, digest, version;
- :mod:`~dagfetch.storage.filesystem`: :func:`open_filesystem` for a URL, a connection and
  storage options, naming what to install when the implementation is missing.

A plugin reading archives from any store opens it like this::

    store = open_filesystem(inner_url, source.connection, options.storage_options)
    with store.fs.open(store.path, "rb") as fh: ...
"""

from dagfetch.storage.families import (
    FAMILIES,
    NOT_STORES,
    OTHER,
    StoreFamily,
    describe,
    family_for,
    is_store,
    storage_options,
    versioned_path,
)
from dagfetch.storage.filesystem import OpenedStore, open_filesystem, url_protocol, url_protocols
from dagfetch.storage.tokens import VERSION_KEY, Described

__all__ = [
    "FAMILIES",
    "NOT_STORES",
    "OTHER",
    "VERSION_KEY",
    "Described",
    "OpenedStore",
    "StoreFamily",
    "describe",
    "family_for",
    "is_store",
    "open_filesystem",
    "storage_options",
    "url_protocol",
    "url_protocols",
    "versioned_path",
]
