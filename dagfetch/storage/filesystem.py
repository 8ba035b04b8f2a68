"""Opening the fsspec file system behind a URL, with a connection's credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from dagfetch.connections import Connection
from dagfetch.errors import BackendNotInstalled, FetchError
from dagfetch.redact import CHAIN_SEPARATOR, mask, redact_url
from dagfetch.storage.families import StoreFamily, family_for

if TYPE_CHECKING:  # fsspec is imported on first use: `import dagfetch` stays light
    from fsspec.spec import AbstractFileSystem


@attrs.frozen
class OpenedStore:
    """A file system opened for one URL: ``path`` is the URL in the form ``fs`` takes."""

    fs: AbstractFileSystem
    path: str
    protocol: str
    family: StoreFamily
    filesystem_class: type[AbstractFileSystem] = attrs.field(repr=False)


def url_protocols(url: str) -> list[str]:
    """The fsspec protocol of each link of ``url``, outermost first: one for a plain URL,
    more for a chained one (``simplecache::s3://bucket/dags`` is ``["simplecache", "s3"]``).
    As in fsspec, a link before the last one may be a bare protocol name (``simplecache``);
    a last link without ``scheme://`` is a local path: ``file``."""
    links = url.split(CHAIN_SEPARATOR)
    protocols = []
    for index, link in enumerate(links):
        protocol, sep, _ = link.partition("://")
        if sep:
            protocols.append(protocol.lower())
        else:
            protocols.append("file" if index == len(links) - 1 else link.lower())
    return protocols


def url_protocol(url: str) -> str:
    """The fsspec protocol of the store ``url`` reads: its last link (a path without
    ``scheme://`` is ``file``). The links before it wrap that store (caches, mostly)."""
    return url_protocols(url)[-1]


def open_filesystem(
    url: str,
    connection: Connection | None = None,
    storage_options: Mapping[str, Any] | None = None,
    *,
    version_aware: bool = False,
    where: str | None = None,
    timeouts: tuple[float, float] | None = None,
    connections: int | None = None,
) -> OpenedStore:
    """Open the file system serving ``url``, through fsspec's own URL handling
    (:func:`fsspec.core.url_to_fs`): chained URLs (``simplecache::s3://bucket/dags``) and
    protocols that carry arguments in the URL (``github://org:repo@ref/path``) work as in
    fsspec.

    Keyword arguments come from, later ones winning: the URL itself (as fsspec reads it),
    ``timeouts`` (connect, read seconds) in the family's words (with the file system's own
    retries off: the caller retries), a pool of ``connections`` when the caller keeps that
    many requests in flight, ``connection`` mapped for the store's family,
    ``storage_options`` as given (tables merged one level deep), and ``version_aware=True``
    when asked for and the family keeps versions. In a chained URL, the timeouts, the
    connection's options, the pool and ``version_aware`` go to the store (the last link) and
    ``storage_options`` follow fsspec's rule: a key named after a link's protocol holds that
    link's options, any other key goes to the first link. A missing fsspec implementation
    (of any link) is :class:`BackendNotInstalled` naming what to install (chained to the
    ImportError); a file system refusing its arguments is a :class:`FetchError` naming
    ``where`` (default: the redacted URL). Lower-library text is masked."""
    import fsspec
    from fsspec.core import url_to_fs

    protocols = url_protocols(url)
    protocol = protocols[-1]
    family = family_for(protocol)
    for link_protocol in protocols:
        try:
            cls = fsspec.get_filesystem_class(link_protocol)
        except (ImportError, ValueError) as exc:
            hint = (family_for(link_protocol).install_hint
                    or "install the fsspec implementation for it")
            raise BackendNotInstalled(link_protocol, mask(f"{exc}; {hint}")) from exc
    where = where or redact_url(url)
    # outside the try: a connection that cannot be mapped is a configuration error (it
    # names the conn_id), not a failure of the store
    store_kwargs: dict[str, Any] = {}
    if timeouts is not None:
        store_kwargs.update(family.timeouts(*timeouts))
    if connections is not None:
        _merge(store_kwargs, family.pool(connections))
    if connection is not None:
        _merge(store_kwargs, family.connection_options(connection))
    if version_aware and family.versioned:
        store_kwargs["version_aware"] = True
    kwargs: dict[str, Any] = dict(storage_options or {})
    if len(protocols) == 1:
        _merge(store_kwargs, kwargs)
        kwargs = store_kwargs
    else:
        given = kwargs.get(protocol) or {}
        if not isinstance(given, Mapping):
            raise FetchError(f"{where}: storage_options.{protocol} must be a table of options")
        _merge(store_kwargs, given)
        kwargs[protocol] = store_kwargs
    try:
        fs, path = url_to_fs(url, **kwargs)
    except Exception as exc:
        raise FetchError(f"{where}: cannot open the file system: {mask(str(exc))}") from None
    if timeouts is not None and len(protocols) == 1:
        family.single_attempt(fs)  # the store itself, not a caching layer chained before it
    return OpenedStore(fs, path, protocol, family, cls)


def _merge(into: dict[str, Any], given: Mapping[str, Any]) -> None:
    """``into.update(given)``, tables one level deep merged key by key: a connection's
    ``client_kwargs`` (auth) keeps the timeout set under the same key."""
    for key, value in given.items():
        old = into.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            into[key] = {**old, **value}
        else:
            into[key] = value
