"""Repository URLs as the manifest reads them: the scheme of a URL, the URL forms plugins
offer for URLs written without ``scheme://``, and the checks a URL passes before any backend
sees it (local paths made absolute ``file://`` URLs, chained fsspec URLs link by link)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from dagfetch._entrypoints import distribution_of, entry_points
from dagfetch.errors import ConfigError, ManifestError
from dagfetch.protocol import URL_FORMS_GROUP, UrlForm
from dagfetch.redact import CHAIN_SEPARATOR, URL_ARGUMENT_SCHEMES, masker

SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

#: builds the error for a dotted manifest field and what is wrong with it
Fail = Callable[[str, str], ManifestError]


@attrs.frozen
class NamedForm:
    """A URL form and the entry point that offered it."""

    name: str
    distribution: str
    form: UrlForm = attrs.field(eq=False, repr=False)

    def describe(self) -> str:
        return f"{self.distribution} ({self.name})"


_forms: tuple[NamedForm, ...] | None = None
_forms_lock = threading.Lock()


def url_forms(*, reload: bool = False) -> tuple[NamedForm, ...]:
    """The URL forms installed plugins offer, loaded once per process (``reload`` reads the
    entry points again, for a plugin installed since)."""
    global _forms
    with _forms_lock:
        if _forms is None or reload:
            loaded = []
            for ep in sorted(entry_points(URL_FORMS_GROUP), key=lambda e: e.name):
                dist, version = distribution_of(ep)
                try:
                    form = ep.load()
                except Exception as exc:
                    raise ConfigError(
                        f"URL form {ep.name!r} of {dist} {version} failed to load "
                        f"({type(exc).__name__}: {exc}); reinstall {dist}"
                    ) from exc
                if not callable(form):
                    raise ConfigError(f"URL form {ep.name!r} of {dist} {version} is not callable")
                loaded.append(NamedForm(ep.name, dist, form))
            _forms = tuple(loaded)
        return _forms


def scheme_by_form(url: str) -> str | None:
    """The scheme the URL forms give ``url`` (written without ``scheme://``), if any."""
    claims: dict[str, list[str]] = {}
    for named in url_forms():
        scheme = named.form(url)
        if scheme is None:
            continue
        if not isinstance(scheme, str) or not SCHEME.match(scheme.lower()):
            raise ConfigError(f"URL form {named.describe()} returned {scheme!r}, not a scheme")
        claims.setdefault(scheme.lower(), []).append(named.describe())
    if len(claims) > 1:
        said = "; ".join(f"{', '.join(who)} say {scheme}" for scheme, who in claims.items())
        raise ConfigError(f"URL forms disagree about {url!r}: {said}; write it with scheme://")
    return next(iter(claims), None)


def url_scheme(url: str) -> str:
    """The URL's scheme. One written without ``scheme://`` gets the scheme a URL form gives it
    (``git@host:org/repo.git`` is ``ssh``), else it is a plain path: ``file``. A chained
    fsspec URL (``simplecache::s3://bucket/dags``) has the scheme of its last link, the
    store it reads: the backend serving that scheme opens the whole chain."""
    if CHAIN_SEPARATOR in url:
        url = url.rsplit(CHAIN_SEPARATOR, 1)[1]
    if "://" not in url:
        return scheme_by_form(url) or "file"
    return url.split("://", 1)[0].lower()


def check_url(url: str, field: str, base_dir: Path | None, fail: Fail) -> str:
    if CHAIN_SEPARATOR in url:
        return _check_chain(url, field, base_dir, fail)
    if "://" not in url:
        try:
            by_form = scheme_by_form(url)
        except ConfigError as exc:
            raise fail(field, str(exc)) from exc
        if by_form is not None:
            return url  # a backend's own form (git@host:path): kept as written
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) and not re.match(r"^[A-Za-z]:[\\/]", url):
            raise fail(field, f"{url!r} is missing '//' after the scheme")
        return "file://" + str(resolve_path(Path(url), base_dir))
    scheme, rest = url.split("://", 1)
    if not SCHEME.match(scheme.lower()):
        raise fail(field, f"{scheme!r} is not a valid URL scheme")
    if scheme.lower() == "file" and rest and not rest.startswith("/"):
        return "file://" + str(resolve_path(Path(rest), base_dir))
    try:
        password = urlsplit(url).password
    except ValueError as exc:
        raise fail(field, f"not a valid URL: {exc}") from None
    if password and scheme.lower() not in URL_ARGUMENT_SCHEMES:
        masker.add(password)  # a lower library may quote the URL in its own errors
    if not rest:
        raise fail(field, "URL has nothing after the scheme")
    return url


def _check_chain(url: str, field: str, base_dir: Path | None, fail: Fail) -> str:
    """A chained fsspec URL: links before the last wrap the store (``simplecache``,
    ``filecache``, or with arguments ``simplecache://::``); the last link is checked as any
    repository URL."""
    *wrappers, store = url.split(CHAIN_SEPARATOR)
    for link in wrappers:
        protocol = link.split("://", 1)[0]
        if not SCHEME.match(protocol.lower()):
            raise fail(field, f"{protocol!r} (a link of the chained URL) is not a valid "
                              "fsspec protocol")
    if not store.strip():
        raise fail(field, "the chained URL ends in '::'; give the store's URL last")
    checked = check_url(store, field, base_dir, fail)
    return CHAIN_SEPARATOR.join([*wrappers, checked])


def resolve_path(path: Path, base_dir: Path | None) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base_dir`` (the manifest's folder)."""
    path = path.expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path.resolve()
