"""Which backend serves which URL scheme: a generic loader that knows no backend.

Backends are entry points in the group ``dagfetch.fetchers``: the name is a URL scheme, the
value a fetcher factory. dagfetch's own are declared the same way in its ``pyproject.toml``,
so built-ins and third-party plugins travel one road. Entry points are read once and loaded
only when their scheme is first used.

What a backend needs installed is entry-point metadata too: ``myscheme =
"mypkg.fetcher:MyFetcher [cloud]"`` names the extra ``cloud`` of its distribution.
Before loading, the registry checks from the distribution's metadata that the requirements of
those extras are installed; a missing one (or an ImportError while loading) is
:class:`BackendNotInstalled` saying ``pip install '<dist>[<extras>]'`` (or, with no extras
declared, ``reinstall <dist>``), chained to the cause. Any third-party distribution gets the
same by declaring its extras.

A compound scheme ``outer+inner`` (``zip+s3``, ``git+https``) is served by ``outer+inner`` if
registered, else by ``outer``. When two distributions claim one scheme the lookup fails and
names both, unless ``prefer`` (the manifest's ``scheme_providers``) picks one. A scheme no
entry point claims goes to the ``fallback`` handed in, if any: :mod:`dagfetch.defaults` hands
in the generic fsspec backend for fsspec's stores.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping

import attrs

from dagfetch._entrypoints import (
    EntryPoint,
    distribution_of,
    entry_points,
    install_hint,
    unmet_requirements,
)
from dagfetch.errors import (
    BackendNotInstalled,
    RegistryError,
    SchemeConflictError,
    UnknownSchemeError,
)
from dagfetch.protocol import FetcherFactory

GROUP = "dagfetch.fetchers"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")

Fallback = Callable[[str], FetcherFactory | None]
"""Serves a scheme no entry point claims: the factory for it, or None."""


@attrs.frozen
class Provider:
    """One entry point claiming a scheme, with the distribution that declared it.
    ``value`` is the object reference (``module:attr``); ``extras`` the extras of the
    distribution it needs."""

    scheme: str
    value: str
    distribution: str
    version: str
    entry_point: EntryPoint = attrs.field(eq=False, repr=False)
    extras: tuple[str, ...] = ()

    @classmethod
    def of(cls, ep: EntryPoint) -> Provider:
        dist, version = distribution_of(ep)
        value = ep.value.split("[", 1)[0].strip()
        return cls(ep.name.lower(), value, dist, version, ep, tuple(ep.extras))

    def describe(self) -> str:
        return f"{self.distribution} {self.version} ({self.value})"

    @property
    def install_hint(self) -> str | None:
        """``pip install '<dist>[<extras>]'``, when the entry point names extras."""
        return install_hint(self.distribution, self.extras) if self.extras else None

    def missing(self) -> list[str]:
        """Requirements of its extras that are not installed (``s3fs>=2024.6.0``), from
        metadata alone: nothing is imported. Empty: the scheme is usable."""
        return [requirement for requirement, _ in unmet_requirements(self.entry_point)]


class Registry:
    """Maps URL schemes to fetcher factories. Thread-safe.

    A bare ``Registry()`` serves the schemes entry points (and :meth:`register`) claim, and
    nothing else. ``fallback`` serves a scheme no one claims (return None to refuse it);
    :func:`dagfetch.defaults.registry_for` builds one with dagfetch's fsspec fallback, which
    is what :class:`~dagfetch.workspace.Workspace` uses."""

    def __init__(
        self, prefer: Mapping[str, str] | None = None, fallback: Fallback | None = None
    ) -> None:
        self._prefer = dict(prefer or {})
        self._fallback = fallback
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
                    claim = Provider.of(ep)
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
        fallback = self._fallback(scheme) if self._fallback is not None else None
        if fallback is not None:
            with self._lock:
                self._loaded[scheme] = fallback
            return fallback
        raise UnknownSchemeError(scheme, self.schemes())

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
        unmet = unmet_requirements(provider.entry_point)
        if unmet:
            needs = ", ".join(requirement for requirement, _ in unmet)
            raise BackendNotInstalled(
                provider.scheme,
                f"{provider.describe()} needs {needs}, not installed; {provider.install_hint}",
            ) from unmet[0][1]
        try:
            loaded = provider.entry_point.load()
        except ImportError as exc:
            hint = provider.install_hint or f"reinstall {provider.distribution}"
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
