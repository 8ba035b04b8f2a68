"""The contract between the core and a backend.

A backend is a callable ``factory(source) -> Fetcher``, usually the fetcher class itself,
registered under a URL scheme in the entry-point group ``dagfetch.fetchers``. A fetcher:

- :meth:`Fetcher.list` cheaply describes what the remote holds now (paths, sizes, change
  tokens, and a version id for the whole repository when the backend has one);
- :meth:`Fetcher.fetch` downloads the given files into a staging directory;
- declares its :class:`Capabilities` instead of failing deep inside when asked for more;
- may offer ``remote_version() -> str | None`` (:data:`REMOTE_VERSION`): the version id
  :meth:`Fetcher.list` would report, learned without building the listing (git: the ref's
  commit). When it equals the current version's, the sync stops there; otherwise ``list``
  follows on the same fetcher, which may reuse what ``remote_version`` learned.
- may offer ``use_held_contents(read: HeldContents) -> None`` (:data:`HELD_CONTENTS`): before
  ``remote_version`` and ``list``, the core hands it a reader of the files the cache already
  holds, by the change token they were listed with. A transfer that sends changes as deltas
  on content it thinks we hold (git's thin packs) can rebuild them locally instead of asking
  the remote again. The bytes come from the local cache: check them against the token before
  use (git hashes them to the blob id), and fall back to the remote when they do not match.

A backend whose URLs can be written without ``scheme://`` (git's ``git@host:path``) also
offers a :data:`UrlForm` in the entry-point group ``dagfetch.url_forms``: the manifest asks
the forms what such a URL is before taking it for a local path.

A fetcher never writes into the cache itself, never decides what changed, and never checks
paths for traversal: the cache does all three, the same way for every backend. Implementers
need not import anything from dagfetch but the value types in :mod:`dagfetch.models`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from dagfetch.connections import Connection
from dagfetch.limits import DEFAULT_LIMITS, Limits
from dagfetch.models import Listing, RemoteFile


@attrs.frozen
class Capabilities:
    """What a backend can do, declared up front.

    ``incremental``: can download any subset of the listing (else the cache asks for all).
    ``versioned``: fetching a file described by an *old* listing (its token / extra) returns
    that old content exactly, so an evicted version can be fetched again.
    ``named_versions``: :meth:`VersionedFetcher.list_version` lists any version by its id.
    ``concurrent``: downloads run in parallel (``options.concurrency`` bounds them).
    """

    incremental: bool = True
    versioned: bool = False
    named_versions: bool = False
    concurrent: bool = False


@attrs.frozen
class Source:
    """Everything a fetcher is built from. ``url`` is the manifest's URL as written; log and
    report it through :func:`dagfetch.redact.redact_url` only."""

    repo_id: str
    url: str
    connection: Connection | None = None
    ref: str | None = None
    subdir: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)
    work_dir: Path | None = None  # a private, persistent folder the backend may use (git store)
    # the repository's ``limits`` table: a backend enforces the byte limits and timeouts
    # while it downloads (the core checks the listing itself)
    limits: Limits = DEFAULT_LIMITS

    @property
    def field(self) -> str:
        """Dotted manifest path of the repository (``dag_repositories.<id>``), for errors:
        a bad option is reported at ``f"{source.field}.options.<name>"``."""
        return f"dag_repositories.{self.repo_id}"


FileDone = Callable[[RemoteFile], None]
# path -> sha256 of the bytes a fetcher wrote there (see Fetcher.fetch)
Written = Mapping[str, str]


@runtime_checkable
class Fetcher(Protocol):
    capabilities: Capabilities

    def list(self) -> Listing:
        """Describe the remote's current state. Paths are relative to ``subdir``."""
        ...

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> Written | None:
        """Write each file's bytes to ``dest / file.path`` (parents may need creating).

        May return the sha256 of the bytes it wrote, by path, for files it checked against
        their listing's digest itself (git checks each blob's id) or whose listing gives
        none (the fsspec backend hashes what it writes to S3 downloads as it writes it):
        the cache then takes those hashes and does not read the files back (it still checks
        their sizes). None, or a path left out: the cache hashes the file (and checks the
        listing's digest).

        Raise :class:`dagfetch.errors.FetchError` (or a subclass) on failure; partial output
        in ``dest`` is cleaned up by the caller.
        """
        ...

    def close(self) -> None:
        """Release connections. Called once; the fetcher is not used afterwards."""
        ...


@runtime_checkable
class VersionedFetcher(Fetcher, Protocol):
    """A fetcher whose ``capabilities.named_versions`` is true."""

    def list_version(self, version_id: str) -> Listing:
        """Describe the repository as it was at ``version_id`` (a git commit, ...)."""
        ...


FetcherFactory = Callable[[Source], Fetcher]

REMOTE_VERSION = "remote_version"
"""The optional fetcher method the core asks before listing (see the module docstring)."""

HELD_CONTENTS = "use_held_contents"
"""The optional fetcher method the core hands a :data:`HeldContents` reader to, before it
asks ``remote_version`` or ``list`` (see the module docstring)."""
HeldContents = Callable[[str], bytes | None]
"""Takes a change token the fetcher listed (git: a blob id) and returns the bytes of a file
of the current version listed with it, or None when the cache holds none. The bytes are
unchecked: a damaged cache can return wrong ones, so the fetcher verifies them."""

URL_FORMS_GROUP = "dagfetch.url_forms"
UrlForm = Callable[[str], str | None]
"""A callable taking a URL written without ``scheme://`` and returning the scheme that serves
it, or None when the URL is not of its form. Offered as an entry point in
:data:`URL_FORMS_GROUP`; read only when a manifest holds such a URL. The URL reaches the
fetcher as written: the form names the scheme, it does not rewrite the URL."""


class BaseFetcher:
    """Optional base class with harmless defaults; implementing the protocol is enough."""

    capabilities: Capabilities = Capabilities()

    def __init__(self, source: Source) -> None:
        self.source = source

    def close(self) -> None:
        return None

    def __enter__(self) -> BaseFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
