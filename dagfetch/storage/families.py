"""The one table of store families: what differs between S3, GCS, Azure, HTTP and local stores.

Everything dagfetch does differently per store is a column of :data:`FAMILIES`, so a reader
of an fsspec URL (the fsspec backend, the zip plugin, a cache written to a store) asks
:func:`family_for` once and never tests a protocol name itself:

=======  ====================  =======  ==========================================
family   protocols             extra    differs in
=======  ====================  =======  ==========================================
s3       s3, s3a               s3       versions (``?versionId=``)
gcs      gs, gcs               gcs      versions (``#generation``); one GET per object
azure    az, abfs, abfss       azure    versions (``?versionid=``); lists blobs itself
http     http, https           http     paths are URLs; listed from index pages
local    file, local, memory   -        none
=======  ====================  =======  ==========================================

Any other protocol fsspec implements gets :data:`OTHER` (the same behaviour as ``local``),
except the ones that are views of other data and never a store dagfetch reads repositories
from or writes to (:data:`NOT_STORES`: archives, git, kerchunk references).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from dagfetch.connections import Connection
from dagfetch.storage.connections import (
    azure_options,
    extra_as_is,
    gcs_options,
    http_options,
    s3_options,
)
from dagfetch.storage.tokens import (
    Described,
    describe_any,
    describe_azure,
    describe_gcs,
    describe_http,
    describe_s3,
)

ListingKind = Literal["find", "blobs", "index"]
ConnectionMapper = Callable[[Connection], dict[str, Any]]
Describer = Callable[[Mapping[str, Any], bool], Described]
TimeoutMapper = Callable[[float, float], dict[str, Any]]  # (connect, read) seconds -> kwargs
PoolMapper = Callable[[int], dict[str, Any]]  # requests kept in flight -> kwargs


def _aiohttp_timeout(connect: float, read: float) -> Any:
    import aiohttp

    # no total: a large file may take long, as long as bytes keep arriving
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


def s3_timeouts(connect: float, read: float) -> dict[str, Any]:
    # one attempt per request in botocore: dagfetch's own retry policy decides what is
    # retried (botocore's backoff spent 9-15 s on a refused connection)
    return {
        "config_kwargs": {
            "connect_timeout": connect,
            "read_timeout": read,
            "retries": {"max_attempts": 1, "mode": "standard"},
        },
    }


# botocore's default: at most 10 connections per client, whatever the caller's concurrency
BOTOCORE_POOL = 10


def s3_pool(connections: int) -> dict[str, Any]:
    # a sync's `concurrency` workers share one client: with botocore's pool of 10 the 6
    # others of the default 16 waited for a connection, and `concurrency = 16` meant 10
    if connections <= BOTOCORE_POOL:
        return {}
    return {"config_kwargs": {"max_pool_connections": connections}}


def no_pool(connections: int) -> dict[str, Any]:
    return {}


def s3_single_attempt(fs: Any) -> None:
    # s3fs retries connection errors 5 times with backoff inside each call (1.4 s per call
    # on a refused port, several calls per listing): dagfetch's retry policy decides instead
    fs.retries = 1


def azure_single_attempt(fs: Any) -> None:
    # azure-core's retry policy spent 80 s on a refused connection before reporting it; the
    # clients of one file system share its pipeline, so this reaches every blob request
    clients = fs.service_client if isinstance(fs.service_client, list) else [fs.service_client]
    for client in clients:
        policy = getattr(getattr(client, "_config", None), "retry_policy", None)
        for name in ("total_retries", "connect_retries", "read_retries", "status_retries"):
            if hasattr(policy, name):
                setattr(policy, name, 0)


def gcs_single_attempt(fs: Any) -> None:
    # gcsfs retries each request 6 times with backoff up to 32 s (35 s on a refused
    # connection), fixed by a decorator at class definition: this instance calls the
    # undecorated requests instead (functools.wraps keeps them as __wrapped__)
    import types

    for name in ("_request", "_get_file_request"):
        undecorated = getattr(getattr(type(fs), name, None), "__wrapped__", None)
        if undecorated is not None:
            setattr(fs, name, types.MethodType(undecorated, fs))


def no_own_retries(fs: Any) -> None:
    return None


def gcs_timeouts(connect: float, read: float) -> dict[str, Any]:
    return {"session_kwargs": {"timeout": _aiohttp_timeout(connect, read)}}


def azure_timeouts(connect: float, read: float) -> dict[str, Any]:
    return {"connection_timeout": connect, "read_timeout": read}


def http_timeouts(connect: float, read: float) -> dict[str, Any]:
    return {"client_kwargs": {"timeout": _aiohttp_timeout(connect, read)}}


def no_timeouts(connect: float, read: float) -> dict[str, Any]:
    return {}


@attrs.frozen
class ConditionalWrites:
    """How a store replaces an object only if it is still the one read (compare and swap).

    ``tag``: listed ``info`` -> the object's tag (an ETag). ``put_kwargs``: tag -> keyword
    arguments of ``pipe_file`` that replace only the object of that tag, or (None) create
    only if there is none. ``refused``: whether an error of that write is the store refusing
    the condition (the object changed meanwhile)."""

    tag: Callable[[Mapping[str, Any]], str | None]
    put_kwargs: Callable[[str | None], dict[str, Any]]
    refused: Callable[[BaseException], bool]


def _s3_refused(exc: BaseException) -> bool:
    # s3fs maps If-None-Match failures to FileExistsError and If-Match ones to an OSError
    # whose cause is botocore's ClientError with the code PreconditionFailed (HTTP 412)
    if isinstance(exc, FileExistsError):
        return True
    cause = getattr(exc, "__cause__", None)
    code = (getattr(cause, "response", None) or {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412")


S3_CONDITIONAL = ConditionalWrites(
    tag=lambda info: (str(info["ETag"]) if info.get("ETag") else None),
    put_kwargs=lambda tag: {"IfMatch": tag} if tag is not None else {"IfNoneMatch": "*"},
    refused=_s3_refused,
)

# fsspec protocols that read the content of something else as a tree: an archive, a local
# git repository, a set of references. A repository URL naming one is a mistake (dagfetch
# has its own git backend; archives are the dagfetch-zip plugin's), so none is used as a
# store. fsspec's ``github`` is a store: GitHub's API serving one repository at one ref
# (``github://org:repo@ref/path``, the URL carrying its arguments).
NOT_STORES = frozenset({"zip", "tar", "libarchive", "git", "gist", "reference"})


@attrs.frozen
class StoreFamily:
    """One row of the table.

    ``extra``: the dagfetch extra installing the family's fsspec implementation.
    ``connection_options``: connection -> file-system keyword arguments.
    ``describe``: listed ``info`` (and whether versions are read) -> change token, digest,
    object version. ``version_marker``: what joins a path and an object version in the form
    the file system parses (with ``version_aware=True``); None: the store keeps no versions.
    ``download_kwargs``: extra keyword arguments of each ``_get_file``. ``listing``: ``find``
    (the file system's own), ``blobs`` (Azure's List Blobs, read directly: adlfs's ``find``
    costs one more request per check and lists no versions) or ``index`` (HTML index pages).
    ``paths_are_urls``: the file system addresses files by whole URLs (HTTP).
    ``container``: what the URL's host part names (``bucket``), when the store needs one.
    ``timeouts``: (connect, read) seconds -> file-system keyword arguments setting them.
    ``pool``: how many requests the caller keeps in flight -> file-system keyword arguments
    letting it (a pool of connections that large); for clients whose pool is smaller than
    a sync's concurrency by default.
    ``single_attempt``: turns off the file system's own retries (dagfetch's retry policy
    decides what is retried, and a refused connection is not).
    ``conditional``: compare-and-swap writes (:class:`ConditionalWrites`); None where the
    store (or dagfetch) has none.
    """

    name: str
    protocols: frozenset[str]
    extra: str | None
    connection_options: ConnectionMapper
    describe: Describer
    version_marker: str | None = None
    download_kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    listing: ListingKind = "find"
    paths_are_urls: bool = False
    container: str | None = None
    timeouts: TimeoutMapper = no_timeouts
    pool: PoolMapper = no_pool
    single_attempt: Callable[[Any], None] = no_own_retries
    conditional: ConditionalWrites | None = None

    @property
    def versioned(self) -> bool:
        """The store keeps object versions dagfetch can record and fetch again."""
        return self.version_marker is not None

    @property
    def install_hint(self) -> str | None:
        return f"pip install 'dagfetch[{self.extra}]'" if self.extra else None

    def versioned_path(self, path: str, version: str) -> str:
        """The path naming one version of an object."""
        if self.version_marker is None:
            raise ValueError(f"{self.name} stores keep no object versions")
        return f"{path}{self.version_marker}{version}"


S3 = StoreFamily(
    name="s3",
    protocols=frozenset({"s3", "s3a"}),
    extra="s3",
    connection_options=s3_options,
    describe=describe_s3,
    version_marker="?versionId=",
    container="bucket",
    timeouts=s3_timeouts,
    pool=s3_pool,
    single_attempt=s3_single_attempt,
    conditional=S3_CONDITIONAL,
)
GCS = StoreFamily(
    name="gcs",
    protocols=frozenset({"gs", "gcs"}),
    extra="gcs",
    connection_options=gcs_options,
    describe=describe_gcs,
    version_marker="#",
    download_kwargs={"concurrency": 1},  # one GET per object, no HEAD to plan chunks
    container="bucket",
    timeouts=gcs_timeouts,
    single_attempt=gcs_single_attempt,
)
AZURE = StoreFamily(
    name="azure",
    protocols=frozenset({"az", "abfs", "abfss"}),
    extra="azure",
    connection_options=azure_options,
    describe=describe_azure,
    version_marker="?versionid=",
    listing="blobs",
    container="container",
    timeouts=azure_timeouts,
    single_attempt=azure_single_attempt,
)
HTTP = StoreFamily(
    name="http",
    protocols=frozenset({"http", "https"}),
    extra="http",
    connection_options=http_options,
    describe=describe_http,
    listing="index",
    paths_are_urls=True,
    timeouts=http_timeouts,
)
LOCAL = StoreFamily(
    name="local",
    protocols=frozenset({"file", "local", "memory"}),
    extra=None,
    connection_options=extra_as_is,
    describe=describe_any,
)
# any other protocol fsspec implements: the same behaviour as local
OTHER = StoreFamily(
    name="other",
    protocols=frozenset(),
    extra=None,
    connection_options=extra_as_is,
    describe=describe_any,
)

FAMILIES: tuple[StoreFamily, ...] = (S3, GCS, AZURE, HTTP, LOCAL)
_BY_PROTOCOL = {protocol: family for family in FAMILIES for protocol in family.protocols}


def family_for(protocol: str) -> StoreFamily:
    """The family serving ``protocol`` (:data:`OTHER` for any protocol not in the table)."""
    return _BY_PROTOCOL.get(protocol.lower(), OTHER)


def is_store(protocol: str) -> bool:
    """fsspec implements ``protocol`` (installed or known) and it is a store, not a view of
    other data (:data:`NOT_STORES`)."""
    protocol = protocol.lower()
    if protocol in NOT_STORES:
        return False
    if protocol in _BY_PROTOCOL:
        return True
    from fsspec.registry import known_implementations, registry

    return protocol in known_implementations or protocol in registry


def storage_options(protocol: str, connection: Connection | None) -> dict[str, Any]:
    """fsspec keyword arguments for ``protocol`` from a connection (empty without one)."""
    if connection is None:
        return {}
    return family_for(protocol).connection_options(connection)


def describe(protocol: str, info: Mapping[str, Any], *, version_aware: bool = False) -> Described:
    """Token, digest and (when ``version_aware``) object version of one listed object."""
    return family_for(protocol).describe(info, version_aware)


def versioned_path(protocol: str, path: str, version: str) -> str:
    """The path naming one version of an object, in the form each file system parses."""
    family = family_for(protocol)
    if not family.versioned:
        raise ValueError(f"{protocol}:// keeps no object versions")
    return family.versioned_path(path, version)
