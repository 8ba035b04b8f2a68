"""dagfetch: fetch DAG code from remote repositories into a versioned local cache.

Data flows one way: manifest -> registry picks a fetcher -> fetcher lists and downloads ->
cache publishes a version. :class:`Workspace` is the entry point for custom schedulers.
"""

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
