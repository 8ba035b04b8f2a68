"""Which backend serves which URL scheme.

Backends are entry points in the group ``dagfetch.fetchers``: the name is a URL scheme, the
value a fetcher factory. dagfetch's own backends are declared the same way in its
``pyproject.toml``, so built-ins and third-party plugins travel one road. Entry points are read
once and loaded only when their scheme is first used.

A compound scheme ``outer+inner`` (``zip+s3``, ``git+https``) is served by ``outer+inner`` if
registered, else by ``outer``. A scheme no entry point claims but that fsspec knows is served
by the generic fsspec backend. When two distributions claim one scheme the lookup fails and
names both, unless ``prefer`` (the manifest's ``scheme_providers``) picks one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

import attrs

from dagfetch._entrypoints import EntryPoint, distribution_of, entry_points
from dagfetch.errors import (
    BackendNotInstalled,
    RegistryError,
    SchemeConflictError,
    UnknownSchemeError,
)
from dagfetch.protocol import FetcherFactory

GROUP = "dagfetch.fetchers"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

# Schemes users expect, and what to install for them: the hint of an unknown-scheme error.
INSTALL_HINTS: Mapping[str, str] = {
    "s3": "pip install 'dagfetch[s3]'",
    "s3a": "pip install 'dagfetch[s3]'",
    "gs": "pip install 'dagfetch[gcs]'",
    "gcs": "pip install 'dagfetch[gcs]'",
    "az": "pip install 'dagfetch[azure]'",
    "abfs": "pip install 'dagfetch[azure]'",
    "abfss": "pip install 'dagfetch[azure]'",
    "http": "pip install 'dagfetch[http]'",
    "https": "pip install 'dagfetch[http]'",
    "git": "pip install 'dagfetch[git]'",
    "ssh": "pip install 'dagfetch[git]'",
    "zip": "pip install dagfetch-zip",
}


@attrs.frozen
class Provider:
    """One entry point claiming a scheme, with the distribution that declared it."""

    scheme: str
    value: str
    distribution: str
    version: str
    entry_point: EntryPoint = attrs.field(eq=False, repr=False)

    def describe(self) -> str:
        return f"{self.distribution} {self.version} ({self.value})"


class Registry:
    """Maps URL schemes to fetcher factories. Thread-safe; one per process is typical."""

    def __init__(self, prefer: Mapping[str, str] | None = None) -> None:
        self._prefer = dict(prefer or {})
        self._providers: dict[str, list[Provider]] | None = None
        self._loaded: dict[str, FetcherFactory] = {}
        self._registered: dict[str, FetcherFactory] = {}
        self._lock = threading.Lock()

    def register(self, scheme: str, factory: FetcherFactory, *, clobber: bool = False) -> None:
        """Register a factory in process (tests, embedding). Entry points are the normal road."""
        scheme = _check_scheme(scheme)
        with self._lock:
            if not clobber and (scheme in self._registered or scheme in self._loaded):
                raise RegistryError(f"scheme {scheme!r} is already registered; pass clobber=True")
            self._registered[scheme] = factory
            self._loaded.pop(scheme, None)

    def providers(self) -> dict[str, list[Provider]]:
        """Every scheme claimed by an entry point, with each claimant."""
        with self._lock:
            if self._providers is None:
                found: dict[str, list[Provider]] = {}
                for ep in entry_points(GROUP):
                    dist, version = distribution_of(ep)
                    claim = Provider(ep.name.lower(), ep.value, dist, version, ep)
                    claims = found.setdefault(claim.scheme, [])
                    # the same distribution can be seen twice on sys.path (editable + site)
                    if all(c.distribution != claim.distribution for c in claims):
                        claims.append(claim)
                self._providers = found
            return self._providers

    def schemes(self) -> list[str]:
        return sorted(set(self.providers()) | set(self._registered))

    def resolve(self, scheme: str) -> FetcherFactory:
        """The factory serving ``scheme``; errors say what is known and what to install."""
        scheme = scheme.lower()
        with self._lock:
            if scheme in self._registered:
                return self._registered[scheme]
            if scheme in self._loaded:
                return self._loaded[scheme]
        for candidate in _candidates(scheme):
            if candidate in self._registered:
                return self._registered[candidate]
            provider = self._pick(candidate)
            if provider is not None:
                factory = self._load(provider)
                with self._lock:
                    self._loaded[scheme] = factory
                return factory
        hint = INSTALL_HINTS.get(scheme) or INSTALL_HINTS.get(scheme.split("+")[0])
        # a scheme with a dedicated dagfetch backend must not fall through to fsspec's own
        # implementation of it (fsspec has a 'git' and a 'zip' of its own)
        if hint is None and _fsspec_knows(scheme):
            from dagfetch.backends.fsspec import FsspecFetcher

            return FsspecFetcher
        raise UnknownSchemeError(scheme, self.schemes(), hint)

    def _pick(self, scheme: str) -> Provider | None:
        claims = self.providers().get(scheme, [])
        if not claims:
            return None
        wanted = self._prefer.get(scheme) or self._prefer.get(scheme.split("+")[0])
        if wanted is not None:
            for claim in claims:
                if _norm(claim.distribution) == _norm(wanted):
                    return claim
            raise RegistryError(
                f"scheme_providers.{scheme}: {wanted!r} does not provide {scheme!r} "
                f"(providers: {', '.join(c.describe() for c in claims)})"
            )
        if len(claims) > 1:
            raise SchemeConflictError(scheme, [c.describe() for c in claims])
        return claims[0]

    def _load(self, provider: Provider) -> FetcherFactory:
        try:
            loaded = provider.entry_point.load()
        except ImportError as exc:
            hint = INSTALL_HINTS.get(provider.scheme, f"reinstall {provider.distribution}")
            raise BackendNotInstalled(
                provider.scheme, f"{provider.describe()} failed to import ({exc}); {hint}"
            ) from exc
        if not callable(loaded):
            raise RegistryError(f"{provider.describe()} is not callable")
        factory: FetcherFactory = loaded
        return factory


def _candidates(scheme: str) -> list[str]:
    outer = scheme.split("+", 1)[0]
    return [scheme] if outer == scheme else [scheme, outer]


def _check_scheme(scheme: str) -> str:
    scheme = scheme.lower()
    if not _SCHEME.match(scheme):
        raise RegistryError(f"{scheme!r} is not a valid URL scheme name")
    return scheme


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _fsspec_knows(scheme: str) -> bool:
    from fsspec.registry import known_implementations, registry

    return scheme in known_implementations or scheme in registry


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = Registry()
    return _default
