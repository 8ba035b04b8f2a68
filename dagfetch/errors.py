"""Every error dagfetch raises on purpose.

The tree, so callers can catch as broadly or narrowly as they need::

    DagfetchError
    ├── ConfigError                 bad manifest, connection or option; raised before any fetch
    │   ├── ManifestError           names the field path: ``dag_repositories.repo2.url``
    │   └── ConnectionConfigError   a conn_id that cannot be resolved or parsed
    ├── RegistryError
    │   ├── UnknownSchemeError      no backend claims the scheme; names the known ones
    │   ├── BackendNotInstalled     a claimed scheme whose packages are missing; names the
    │   │                           `pip install` that fixes it (chained to the ImportError)
    │   └── SchemeConflictError     two distributions claim one scheme; names both
    ├── UnsafePathError             a remote path that would escape the cache; ``path`` and
    │                               ``problem`` say which and why
    ├── FetchError                  the remote failed us (listing, download, verification)
    │   ├── RemoteNotFoundError     also a FileNotFoundError
    │   ├── VerificationError       downloaded bytes do not match the listing
    │   ├── ChangedDuringSync       a file changed between the listing and its download
    │   ├── LimitExceeded           past a ``limits`` value; names file, limit and field
    │   ├── VersionUnavailableError the version cannot be fetched again (no history on the remote)
    │   └── ImmutableSourceChanged  an immutable repository changed under the same URL
    ├── VersionNotFoundError        no such version in the cache (also a LookupError)
    ├── CacheError                  the cache root is unusable or corrupt
    └── (graph store and extraction errors: see :mod:`dagfetch.graphs.errors`)

Messages never carry secrets: they are built from redacted URLs and passed through
:func:`dagfetch.redact.mask` where they quote a lower library.
"""

from __future__ import annotations


class DagfetchError(Exception):
    """Base of every error dagfetch raises on purpose."""


class ConfigError(DagfetchError):
    """Configuration is wrong; nothing was fetched or written."""


class ManifestError(ConfigError):
    """A manifest field is invalid; ``field`` is its dotted path (``dag_repositories.a.url``)."""

    def __init__(self, field: str, problem: str, *, source: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}" if field else f"{where}{problem}")


class ConnectionConfigError(ConfigError):
    """A ``conn_id`` cannot be resolved or its value cannot be parsed."""

    def __init__(self, conn_id: str, problem: str) -> None:
        self.conn_id = conn_id
        self.problem = problem
        super().__init__(f"connection {conn_id!r}: {problem}")


#: The 0.1.0 name of :class:`ConnectionConfigError`, kept so existing ``except`` clauses work.
ConnectionError_ = ConnectionConfigError


class RegistryError(DagfetchError):
    """No usable backend for a URL scheme."""


class UnknownSchemeError(RegistryError):
    def __init__(self, scheme: str, known: list[str], hint: str | None = None) -> None:
        self.scheme = scheme
        self.known = known
        msg = f"no fetcher for URL scheme {scheme!r}"
        if hint:
            msg += f"; {hint}"
        msg += f" (known schemes: {', '.join(known) or 'none'})"
        super().__init__(msg)


class BackendNotInstalled(RegistryError):
    def __init__(self, scheme: str, hint: str) -> None:
        self.scheme = scheme
        super().__init__(f"{scheme}:// is not usable here: {hint}")


class SchemeConflictError(RegistryError):
    def __init__(self, scheme: str, providers: list[str]) -> None:
        self.scheme = scheme
        self.providers = providers
        super().__init__(
            f"URL scheme {scheme!r} is claimed by {' and '.join(providers)}; say which one wins "
            f'with `scheme_providers = {{{scheme} = "<distribution>"}}` in the manifest'
        )


class UnsafePathError(DagfetchError):
    """A remote path would land outside the version directory."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"refusing remote path {path!r}: {problem}")


class FetchError(DagfetchError):
    """Listing or downloading from the remote failed."""


class RemoteNotFoundError(FetchError, FileNotFoundError):
    """The remote location (or one object in it) does not exist."""


class VerificationError(FetchError):
    """A downloaded file does not match what the listing promised."""


class ChangedDuringSync(FetchError):
    """A file's content changed between the listing and its download (the store answered
    a conditional request with "precondition failed", or its validators differ from the
    listing's). Nothing of that listing is recorded; the next sync lists again."""


class LimitExceeded(FetchError):
    """The remote holds (or sends) more than a ``limits`` value allows. ``path`` is the file,
    ``field`` the manifest field that sets the limit (``dag_repositories.<id>.limits.<name>``)."""

    def __init__(self, path: str, problem: str, field: str) -> None:
        self.path = path
        self.problem = problem
        self.field = field
        super().__init__(f"{path!r}: {problem} (set by {field})")


class VersionNotFoundError(DagfetchError, LookupError):
    """The cache holds no such version."""


class VersionUnavailableError(FetchError):
    """A version is gone from the cache and the remote keeps no history to fetch it again."""


class ImmutableSourceChanged(FetchError):
    """A repository declared immutable changed its content under the same URL."""


class CacheError(DagfetchError):
    """The cache root is unusable or its metadata is corrupt."""
