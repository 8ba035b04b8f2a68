"""dagfetch: fetch DAG code from remote repositories into a versioned local cache.

Data flows one way: manifest -> registry picks a fetcher -> fetcher lists and downloads ->
cache publishes a version. :class:`Workspace` is the entry point for custom schedulers.
"""

# not `typing.TYPE_CHECKING`: importing typing here would widen the moment, before the
# command line's Ctrl-C handling is in place, where a Ctrl-C prints a traceback (mypy reads
# any constant named TYPE_CHECKING as true)
TYPE_CHECKING = False
if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from typing import Any

    from dagfetch.cache import GcReport, VersionCache, VersionRecord
    from dagfetch.cache.store import VersionEntry
    from dagfetch.connections import Connection, ConnectionResolver, Secret
    from dagfetch.defaults import default_registry
    from dagfetch.errors import (
        BackendNotInstalled,
        CacheError,
        ConfigError,
        ConnectionConfigError,
        DagfetchError,
        FetchError,
        ImmutableSourceChanged,
        ManifestError,
        RegistryError,
        RemoteNotFoundError,
        SchemeConflictError,
        UnknownSchemeError,
        UnsafePathError,
        VerificationError,
        VersionNotFoundError,
        VersionUnavailableError,
    )
    from dagfetch.graphs.errors import (
        ExtractionError,
        GraphNotFoundError,
        GraphStoreError,
        InvalidGraphError,
        RunAlreadyPinnedError,
        SchemaNotReadyError,
    )
    from dagfetch.importing import ImportedVersion, import_version, version_imports
    from dagfetch.manifest import Manifest, RepositorySpec, load_manifest, parse_manifest
    from dagfetch.models import CachedFile, Listing, RemoteFile, SyncResult, Version
    from dagfetch.protocol import BaseFetcher, Capabilities, Fetcher, Source, VersionedFetcher
    from dagfetch.registry import Registry
    from dagfetch.team import Followed, TeamCache
    from dagfetch.workspace import RepoStatus, Workspace
del TYPE_CHECKING

# Every public name and the module that defines it. ``import dagfetch`` loads none of them,
# so the ``dagfetch`` command (a subpackage, which imports this package first) starts as light
# as click: a name's module is imported when the name is first read (PEP 562).
_LAZY: dict[str, str] = {
    "BackendNotInstalled": "dagfetch.errors",
    "BaseFetcher": "dagfetch.protocol",
    "CacheError": "dagfetch.errors",
    "CachedFile": "dagfetch.models",
    "Capabilities": "dagfetch.protocol",
    "ConfigError": "dagfetch.errors",
    "Connection": "dagfetch.connections",
    "ConnectionConfigError": "dagfetch.errors",
    "ConnectionResolver": "dagfetch.connections",
    "DagfetchError": "dagfetch.errors",
    "ExtractionError": "dagfetch.graphs.errors",
    "FetchError": "dagfetch.errors",
    "Followed": "dagfetch.team",
    "Fetcher": "dagfetch.protocol",
    "GcReport": "dagfetch.cache",
    "GraphNotFoundError": "dagfetch.graphs.errors",
    "GraphStoreError": "dagfetch.graphs.errors",
    "ImmutableSourceChanged": "dagfetch.errors",
    "ImportedVersion": "dagfetch.importing",
    "InvalidGraphError": "dagfetch.graphs.errors",
    "Listing": "dagfetch.models",
    "Manifest": "dagfetch.manifest",
    "ManifestError": "dagfetch.errors",
    "Registry": "dagfetch.registry",
    "RegistryError": "dagfetch.errors",
    "RemoteFile": "dagfetch.models",
    "RemoteNotFoundError": "dagfetch.errors",
    "RepoStatus": "dagfetch.workspace",
    "RepositorySpec": "dagfetch.manifest",
    "RunAlreadyPinnedError": "dagfetch.graphs.errors",
    "SchemaNotReadyError": "dagfetch.graphs.errors",
    "SchemeConflictError": "dagfetch.errors",
    "Secret": "dagfetch.connections",
    "Source": "dagfetch.protocol",
    "SyncResult": "dagfetch.models",
    "TeamCache": "dagfetch.team",
    "UnknownSchemeError": "dagfetch.errors",
    "UnsafePathError": "dagfetch.errors",
    "VerificationError": "dagfetch.errors",
    "Version": "dagfetch.models",
    "VersionCache": "dagfetch.cache",
    "VersionEntry": "dagfetch.cache.store",
    "VersionNotFoundError": "dagfetch.errors",
    "VersionRecord": "dagfetch.cache",
    "VersionUnavailableError": "dagfetch.errors",
    "VersionedFetcher": "dagfetch.protocol",
    "Workspace": "dagfetch.workspace",
    "default_registry": "dagfetch.defaults",
    "import_version": "dagfetch.importing",
    "load_manifest": "dagfetch.manifest",
    "parse_manifest": "dagfetch.manifest",
    "version_imports": "dagfetch.importing",
}


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dagfetch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # read once: later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.2.0.dev0"

__all__ = [
    "BackendNotInstalled",
    "BaseFetcher",
    "CacheError",
    "CachedFile",
    "Capabilities",
    "ConfigError",
    "Connection",
    "ConnectionConfigError",
    "ConnectionResolver",
    "DagfetchError",
    "ExtractionError",
    "FetchError",
    "Fetcher",
    "Followed",
    "GcReport",
    "GraphNotFoundError",
    "GraphStoreError",
    "ImmutableSourceChanged",
    "ImportedVersion",
    "InvalidGraphError",
    "Listing",
    "Manifest",
    "ManifestError",
    "Registry",
    "RegistryError",
    "RemoteFile",
    "RemoteNotFoundError",
    "RepoStatus",
    "RepositorySpec",
    "RunAlreadyPinnedError",
    "SchemaNotReadyError",
    "SchemeConflictError",
    "Secret",
    "Source",
    "SyncResult",
    "TeamCache",
    "UnknownSchemeError",
    "UnsafePathError",
    "VerificationError",
    "Version",
    "VersionCache",
    "VersionEntry",
    "VersionNotFoundError",
    "VersionRecord",
    "VersionUnavailableError",
    "VersionedFetcher",
    "Workspace",
    "__version__",
    "default_registry",
    "import_version",
    "load_manifest",
    "parse_manifest",
    "version_imports",
]
