"""The composition root: the registry dagfetch uses unless it is handed another.

:mod:`dagfetch.registry` is a generic loader that knows no backend: it serves what entry
points claim. The one piece of built-in knowledge that is not an entry point is wired here:
a URL scheme no entry point claims, but that fsspec implements as a store
(:func:`dagfetch.storage.is_store`: not one of fsspec's archive or git views), is served by
dagfetch's generic fsspec backend. This is the only module outside ``dagfetch.backends`` that
imports ``dagfetch.backends``, and only when such a scheme is first asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from dagfetch.protocol import FetcherFactory
from dagfetch.registry import Registry

__all__ = ["default_registry", "fsspec_fallback", "registry_for"]


def fsspec_fallback(scheme: str) -> FetcherFactory | None:
    """The generic fsspec backend for a scheme fsspec serves as a store; None otherwise."""
    # asked only for a scheme no entry point claims: a git or S3 sync never loads storage
    from dagfetch.storage import is_store

    if not is_store(scheme):
        return None
    from dagfetch.backends.fsspec import FsspecFetcher

    return FsspecFetcher


def registry_for(prefer: Mapping[str, str] | None = None) -> Registry:
    """A new registry with dagfetch's defaults; ``prefer`` is the manifest's
    ``scheme_providers``. New each time: entry points are read on its first use."""
    return Registry(prefer=prefer, fallback=fsspec_fallback)


_default: Registry | None = None
_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry with dagfetch's defaults (built on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = registry_for()
        return _default
