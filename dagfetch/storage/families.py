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
)
GCS = StoreFamily(
    name="gcs",
    protocols=frozenset({"gs", "gcs"}),
    extra="gcs",
    connection_options=gcs_options,
    describe=describe_gcs,
    version_marker="#",
    download_kwargs={"concurrency": 1},  # one GET per object, no HEAD to plan chunks
)
AZURE = StoreFamily(
    name="azure",
    protocols=frozenset({"az", "abfs", "abfss"}),
    extra="azure",
    connection_options=azure_options,
    describe=describe_azure,
    version_marker="?versionid=",
    listing="blobs",
)
HTTP = StoreFamily(
    name="http",
    protocols=frozenset({"http", "https"}),
    extra="http",
    connection_options=http_options,
    describe=describe_http,
    listing="index",
    paths_are_urls=True,
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
