"""Git repositories as a dagfetch backend, through dulwich.

A sync is one connection to the server: the ref lookup, and the fetch on the same
connection when the ref moved (nothing more when nothing changed)::

    list()   the ref's commit from the advertised refs (a full sha needs no lookup)
             commit already in the local store? ask for nothing; read its tree there
             else fetch that commit (depth 1 by default; the server is told which commit
             we hold, so only new objects come): its pack is read once (``intake``),
             commits and trees into the store, blobs onto the fetcher's shelf (a
             delta on a blob the store gave away: its base is the cache's copy, lent
             by the core through ``use_held_contents`` and checked against its id)
             -> one RemoteFile per blob (``listing``): token = blob id,
                digest = git-blob:<id>
    fetch()  write the asked-for blobs from the shelf and return their sha256; the core
             asks only for blob ids it does not hold yet, and links the rest. A blob
             not on the shelf (the store keeps none) is fetched again with its commit.

Clients and the ref lookup are in ``transport``.

The version id is the commit sha. :meth:`GitFetcher.list_version` fetches any commit the
remote still has by its sha, after the branch moved on or was force-pushed.

Manifest ``options`` (:class:`~dagfetch.backends.git.options.GitOptions`): ``depth``
(default 1; 0 = full history), ``submodules`` (``error`` | ``skip``), ``lfs`` (``error`` |
``warn`` | ``skip``), ``timeout`` (seconds, HTTP), ``protocol_version`` (0, 1 or 2; default:
the highest both sides speak).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from dulwich.client import GitClient, LocalGitClient

from dagfetch.backends.git.auth import GitAuth, SshSession, auth_from_connection
from dagfetch.backends.git.errors import (
    ConnectionDropped,
    CorruptData,
    ObjectNotReceived,
    StoreCorrupt,
    WantRefused,
)
from dagfetch.backends.git.intake import BlobShelf, git_blob_id
from dagfetch.backends.git.listing import BlobsMissing, TreeLister
from dagfetch.backends.git.options import GitOptions
from dagfetch.backends.git.store import GitStore
from dagfetch.backends.git.transport import lookup_ref, open_client, pick_ref
from dagfetch.backends.git.urls import FULL_SHA, GitLocation, RefSpec, parse_location, parse_ref
from dagfetch.cache.objects import write_bytes
from dagfetch.errors import FetchError, VersionUnavailableError
from dagfetch.limits import ByteBudget
from dagfetch.models import Listing, RemoteFile
from dagfetch.options import parse_options
from dagfetch.protocol import (
    BaseFetcher,
    Capabilities,
    FileDone,
    HeldContents,
    Source,
    Written,
)
from dagfetch.redact import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# Depths tried, in turn, to find a commit on a server that refuses to send a commit by its
# id (protocol v0/v1 without uploadpack.allowReachableSHA1InWant); None = full history.
DEEPEN_STEPS: tuple[int | None, ...] = (50, 1000, None)
class GitFetcher(BaseFetcher):
    """Fetch a git repository (any transport dulwich speaks) into the dagfetch cache."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.location: GitLocation = parse_location(source.url)
        self.ref: RefSpec = parse_ref(source.ref)
        self.auth: GitAuth = auth_from_connection(source.connection)
        self.options = parse_options(GitOptions, source.options, field=f"{source.field}.options")
        self.depth: int | None = self.options.depth or None
        # HTTP requests: the option, else the repository's limits.read_timeout
        self.timeout = self.options.timeout or source.limits.read_timeout
        self.protocol_version: int | None = self.options.protocol_version
        self.where = f"{self.location.display} (ref {self.ref.text})"
        self._tmp_work: Path | None = None
        self._listed_commit: str | None = None
        self._resolved: str | None = None  # remote_version()'s answer, for list()
        work_dir = source.work_dir
        if work_dir is None:  # used outside a cache (tests, one-off listings)
            self._tmp_work = Path(tempfile.mkdtemp(prefix="dagfetch-git-"))
            work_dir = self._tmp_work
        self.store = GitStore(work_dir, self.location.display)
        self.shelf = BlobShelf(work_dir)  # the blobs received, until fetch() writes them
        self.lister = TreeLister(source, self.where, submodules=self.options.submodules,
                                 lfs=self.options.lfs, ref=self.ref.text, blob=self._blob)
        self._client: GitClient | None = None
        self._ssh: SshSession | None = None
        self.capabilities = Capabilities(
            incremental=True, versioned=True, named_versions=True, concurrent=False
        )
        self.ref_lookups = 0  # round trips to learn the ref's commit (tests read it)
        self.pack_fetches = 0

    # -- the protocol ------------------------------------------------------------------------

    def remote_version(self) -> str:
        """The commit the ref points at, fetched if the store lacks it: the core asks this
        before listing, and a no-change sync ends here (no tree walk). :meth:`list` then
        reuses the answer, so a sync stays one connection."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def use_held_contents(self, read: HeldContents) -> None:
        """Take the core's reader of the files the cache holds, by blob id: a thin pack's
        delta on a blob the store gave away is rebuilt from it, checked against the id,
        instead of asking the remote for the base on a second connection."""
        self.store.held = read

    def list(self) -> Listing:
        commit, self._resolved = self._resolved or self._resolve(), None
        advertised = self.ref.commit is None  # the remote named this commit itself
        return self._with_store(
            lambda store: self._listing(store, commit, move_tip=True, advertised=advertised)
        )

    def _resolve(self) -> str:
        self.shelf.clear()
        pinned = self.ref.commit
        if pinned is not None:  # a full sha is its own answer: no ref lookup
            return pinned
        if isinstance(self.client(), LocalGitClient):
            # no connection to save, and dulwich's local fetch packs objects even when
            # nothing is wanted: read the refs (list() fetches a commit the store lacks)
            self.ref_lookups += 1
            return lookup_ref(self.client(), self.location, self.ref, where=self.where,
                              conn_id=self.auth.conn_id, protocol_version=self.protocol_version)
        return self._with_store(self._fetch_ref)

    def list_version(self, version_id: str) -> Listing:
        commit = version_id.strip().lower()
        if not FULL_SHA.match(commit):
            raise VersionUnavailableError(
                f"{self.location.display}: {version_id!r} is not a full commit id (40 hex digits)"
            )
        self.shelf.clear()
        return self._with_store(lambda store: self._listing(store, commit, move_tip=False))

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> Written:
        """Write the blobs and say the sha256 of each: they were checked against their ids
        (by construction or by hashing), so the cache need not read them back."""
        budget = ByteBudget(self.source.limits, repo_field=self.source.field)
        written: dict[str, str] = {}

        def write_all(store: GitStore) -> None:
            self._ensure_blobs(store, files)
            written.clear()
            made: set[str] = set()
            root = os.fspath(dest)
            for f in files:
                data = self._checked_blob(store, f)
                if len(data) != f.size:
                    # the listing's size came from a damaged sizes file: forget it, so the
                    # next listing reads the blobs again
                    store.forget_blob_sizes()
                # sizes were checked on the listing; this holds when they were remembered
                # wrong (the size file is only a cache), before a byte is written
                budget.file(f.path, -1).add(len(data))
                # plain strings (paths passed the core's checks: relative, "/"-separated)
                target = f"{root}/{f.path}"
                parent = target[: target.rfind("/")]
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                # the file must be new; read-only as the cache keeps it (saves a chmod each)
                write_bytes(target, data, os.O_EXCL, 0o444)
                written[f.path] = hashlib.sha256(data).hexdigest()
                if on_file_done is not None:
                    on_file_done(f)

        try:
            self._with_store(write_all)
        finally:
            self.shelf.clear()
        return written

    def close(self) -> None:
        self.shelf.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
        if self._tmp_work is not None:
            shutil.rmtree(self._tmp_work, ignore_errors=True)
            self._tmp_work = None

    # -- remote ----------------------------------------------------------------------------

    def client(self) -> GitClient:
        """The dulwich client for this location, built once."""
        if self._client is None:
            self._client, self._ssh = open_client(
                self.location, self.auth, read_timeout=self.source.limits.read_timeout,
                http_timeout=self.timeout)
        return self._client

    def _fetch_ref(self, store: GitStore) -> str:
        """The commit the configured ref points at, fetched if the store lacks it, over one
        connection: the ref lookup's answer decides what the same connection asks for (no
        pack at all when nothing changed, which makes this as cheap as ``git ls-remote``)."""
        found: builtins.list[str] = []

        def wants(refs: dict[bytes, bytes]) -> builtins.list[bytes]:
            found.append(pick_ref(refs, self.ref, self.where))
            return [found[0].encode()]

        self.ref_lookups += 1
        store.fetch(self.client(), self.location.path, wants, self.shelf, depth=self.depth,
                    where=self.where, conn_id=self.auth.conn_id, ref_prefix=self.ref.prefixes,
                    protocol_version=self.protocol_version)
        if not found:  # pragma: no cover - dulwich always shows the refs to ``wants``
            raise FetchError(f"{self.where}: the server sent no refs")
        # the remote named this object itself, so a failure to send it is a real failure
        # (not a missing commit); an annotated tag is followed to its commit
        commit = store.peel(found[0])
        if not store.has_commit(commit):
            raise VersionUnavailableError(
                f"{self.location.display}: the remote did not send commit {commit}"
            )
        return commit

    def _fetch_commit(self, store: GitStore, commit: str, *, advertised: bool = False,
                      fresh: bool = False) -> None:
        """Fetch ``commit`` by its id; ``fresh``: all of it, though the store holds its
        commit and trees (their blobs are wanted again)."""
        client = self.client()
        self.pack_fetches += 1
        path = self.location.path
        try:
            store.fetch(client, path, lambda refs: [commit.encode()], self.shelf,
                        depth=self.depth, where=self.where, conn_id=self.auth.conn_id,
                        fresh=fresh)
        except WantRefused as exc:
            if client.protocol_version != 2:
                # a v0/v1 server that sends only ref tips: look for the commit in history
                self._deepen_until(store, commit, fresh=fresh)
            elif advertised:
                raise
            else:
                raise self._lacks(exc, commit) from None
        except (ConnectionDropped, ObjectNotReceived) as exc:
            # git's upload-pack dies without a word on the wire when asked for an object it
            # does not have: the client sees a hang-up, or a broken pipe if it was still
            # writing. (For a commit the remote advertised, that is a real failure.)
            if advertised:
                raise
            raise self._lacks(exc, commit) from None
        if not store.has_commit(commit):
            raise VersionUnavailableError(
                f"{self.location.display}: the remote does not have commit {commit}"
            )

    @staticmethod
    def _lacks(exc: FetchError, commit: str) -> VersionUnavailableError:
        return VersionUnavailableError(f"{exc}; the remote does not seem to have commit {commit}")

    def _deepen_until(self, store: GitStore, commit: str, *, fresh: bool) -> None:
        """The server sends only ref tips: fetch branches and tags deeper until ``commit``
        turns up."""
        def tips(refs: dict[bytes, bytes]) -> list[bytes]:
            return sorted({v for k, v in refs.items()
                           if k.startswith((b"refs/heads/", b"refs/tags/"))
                           and not k.endswith(b"^{}")})

        for depth in DEEPEN_STEPS:
            log.info("%s: the server will not send %s by id; fetching history to depth %s",
                     self.where, commit[:12], depth or "full")
            self.pack_fetches += 1
            store.fetch(self.client(), self.location.path, tips, self.shelf, depth=depth,
                        where=self.where, conn_id=self.auth.conn_id, fresh=fresh)
            if store.has_commit(commit) and (not fresh or self.shelf):
                return

    # -- the local store ---------------------------------------------------------------------

    def _with_store(self, work: Callable[[GitStore], T]) -> T:
        """Run ``work`` on the open store. Damaged data (in the store, or a pack that does
        not apply to it) rebuilds the store once and reruns ``work`` against the remote."""
        with self.store.open() as store:
            try:
                return work(store)
            except CorruptData as exc:
                log.warning("%s", exc)
            # outside the except block: its traceback pins the damaged packs' memory maps
            store.rebuild()
            return work(store)

    def _listing(
        self, store: GitStore, commit: str, *, move_tip: bool, advertised: bool = False
    ) -> Listing:
        if not store.has_commit(commit):
            self._fetch_commit(store, commit, advertised=advertised)
        try:
            listing = self.lister.listing(store, commit, keep_sizes=not move_tip)
        except BlobsMissing:
            # a blob whose size was forgotten went to the content store: have them again
            self._fetch_commit(store, commit, advertised=advertised, fresh=True)
            try:
                listing = self.lister.listing(store, commit, keep_sizes=not move_tip)
            except BlobsMissing as exc:
                raise ObjectNotReceived(f"{self.where}: the remote did not send blob {exc} "
                                        f"of commit {commit[:12]}") from None
        # the core fetches only files of a listing it just got from this fetcher, so this is
        # the commit to ask the remote for when a blob is missing from the store
        self._listed_commit = commit
        if move_tip:
            store.set_tip(commit)
        return listing

    def _blob(self, store: GitStore, blob_id: str) -> bytes | None:
        found = self.shelf.get(blob_id)
        return found[0] if found is not None else store.blob(blob_id.encode())

    def _checked_blob(self, store: GitStore, f: RemoteFile) -> bytes:
        """The bytes of ``f``'s blob, checked against its id unless they are the very bytes
        the id was computed from (received in this process, kept in memory)."""
        found = self.shelf.get(f.token)
        data, trusted = found if found is not None else (store.blob(f.token.encode()), False)
        if data is None:
            raise ObjectNotReceived(f"{self.where}: the remote did not send blob {f.token} "
                                    f"of {f.path!r}")
        if not trusted and git_blob_id(data) != f.token:
            raise StoreCorrupt(f"{self.where}: blob {f.token} of {f.path!r} is damaged "
                               "in the local object store")
        return data

    def _ensure_blobs(self, store: GitStore, files: Iterable[RemoteFile]) -> None:
        """Blobs neither received by this process nor in the store (their bytes went to the
        content store, or the store was rebuilt since the listing) come from fetching the
        commit last listed afresh (records written before 0.1.0 name it per file)."""
        missing = [f for f in files
                   if f.token not in self.shelf and not store.has_object(f.token.encode())]
        commits = sorted({f.extra.get("commit") or self._listed_commit or "" for f in missing})
        for commit in commits:
            if not FULL_SHA.match(commit):
                raise FetchError(f"{self.where}: blob {missing[0].token} of "
                                 f"{missing[0].path!r} is not in the local store and its "
                                 "commit is unknown")
            self._fetch_commit(store, commit, fresh=True)
