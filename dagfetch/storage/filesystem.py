"""Opening the fsspec file system behind a URL, with a connection's credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from dagfetch.connections import Connection
from dagfetch.errors import BackendNotInstalled, FetchError
from dagfetch.redact import mask, redact_url
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


def url_protocol(url: str) -> str:
    """The fsspec protocol of ``url`` (a path without ``scheme://`` is ``file``)."""
    protocol, sep, _ = url.partition("://")
    return protocol.lower() if sep else "file"


def open_filesystem(
    url: str,
    connection: Connection | None = None,
    storage_options: Mapping[str, Any] | None = None,
    *,
    version_aware: bool = False,
    where: str | None = None,
    timeouts: tuple[float, float] | None = None,
) -> OpenedStore:
    """Open the file system serving ``url``.

    Keyword arguments come from, later ones winning: the URL itself (as fsspec reads it),
    ``timeouts`` (connect, read seconds) in the family's words (and the file system's own
    retries off: the caller retries), ``connection`` mapped for
    the store's family, ``storage_options`` as given, and
    ``version_aware=True`` when asked for and the family keeps versions. A missing fsspec
    implementation is :class:`BackendNotInstalled` naming what to install (chained to the
    ImportError); a file system refusing its arguments is a :class:`FetchError` naming
    ``where`` (default: the redacted URL). Lower-library text is masked."""
    import fsspec

    protocol = url_protocol(url)
    family = family_for(protocol)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        hint = family.install_hint or "install the fsspec implementation for it"
        raise BackendNotInstalled(protocol, mask(f"{exc}; {hint}")) from exc
    where = where or redact_url(url)
    # outside the try: a connection that cannot be mapped is a configuration error (it
    # names the conn_id), not a failure of the store
    kwargs: dict[str, Any] = {}
    if timeouts is not None:
        kwargs.update(family.timeouts(*timeouts))
    if connection is not None:
        _merge(kwargs, family.connection_options(connection))
    _merge(kwargs, storage_options or {})
    if version_aware and family.versioned:
        kwargs["version_aware"] = True
    try:
        fs = cls(**{**cls._get_kwargs_from_urls(url), **kwargs})
    except Exception as exc:
        raise FetchError(f"{where}: cannot open the file system: {mask(str(exc))}") from None
    if timeouts is not None:
        family.single_attempt(fs)
    return OpenedStore(fs, cls._strip_protocol(url), protocol, family, cls)


def _merge(into: dict[str, Any], given: Mapping[str, Any]) -> None:
    """``into.update(given)``, tables one level deep merged key by key: a connection's
    ``client_kwargs`` (auth) keeps the timeout set under the same key."""
    for key, value in given.items():
        old = into.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            into[key] = {**old, **value}
        else:
            into[key] = value
