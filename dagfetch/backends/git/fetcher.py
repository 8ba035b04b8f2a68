"""Git repositories as a dagfetch backend, through dulwich.

A sync costs one ref lookup when nothing changed. Otherwise::

    list()   ls-remote for the ref -> commit sha
             commit already in the local store? read its tree there, no fetch
             else fetch that commit (depth 1 by default; the server is told which commit
             we hold, so only new objects come) into the store
             -> one RemoteFile per blob: token = blob id, digest = git-blob:<id>
    fetch()  write the asked-for blobs from the store; the core asks only for blob ids
             it does not hold yet, and links the rest

The version id is the commit sha. :meth:`GitFetcher.list_version` fetches any commit the
remote still has by its sha, after the branch moved on or was force-pushed.

Manifest ``options`` (:class:`~dagfetch.backends.git.options.GitOptions`): ``depth``
(default 1; 0 = full history), ``submodules`` (``error`` | ``skip``), ``lfs`` (``error`` |
``warn`` | ``skip``), ``timeout`` (seconds, HTTP), ``protocol_version`` (0, 1 or 2; default:
the highest both sides speak).
"""

from __future__ import annotations

import builtins
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dulwich.client import GitClient, LocalGitClient, SSHGitClient, TCPGitClient
from dulwich.client import Urllib3HttpGitClient as HttpGitClient

from dagfetch.backends.git.auth import GitAuth, SshSession, auth_from_connection
from dagfetch.backends.git.errors import (
    ConnectionDropped,
    CorruptData,
    ObjectNotReceived,
    StoreCorrupt,
    WantRefused,
    translated,
)
from dagfetch.backends.git.options import GitOptions
from dagfetch.backends.git.store import BlobSizes, GitStore
from dagfetch.backends.git.urls import FULL_SHA, GitLocation, RefSpec, parse_location, parse_ref
from dagfetch.cache.objects import git_blob_hasher
from dagfetch.errors import (
    FetchError,
    LimitExceeded,
    RemoteNotFoundError,
    UnsafePathError,
    VersionUnavailableError,
)
from dagfetch.limits import ByteBudget
from dagfetch.models import Listing, RemoteFile
from dagfetch.options import parse_options
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.redact import get_logger

log = get_logger(__name__)

T = TypeVar("T")

LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX = 1024
GITLINK = 0o160000
# Depths tried, in turn, to find a commit on a server that refuses to send a commit by its
# id (protocol v0/v1 without uploadpack.allowReachableSHA1InWant); None = full history.
DEEPEN_STEPS: tuple[int | None, ...] = (50, 1000, None)
# Bytes of blobs a listing read (to learn their sizes) kept for the fetch that follows, so a
# cold sync inflates each blob once, not twice; beyond this the fetch reads them again.
KEEP_LISTED_BYTES = 16 << 20


class _TimedTCPGitClient(TCPGitClient):
    """git:// with a read timeout: dulwich's TCP client has none, so a daemon that accepts
    and then says nothing held a sync for ever."""

    def __init__(self, host: str, port: int | None, *, read_timeout: float) -> None:
        super().__init__(host, port)
        self._read_timeout = read_timeout

    def _connect(self, cmd: bytes, path: str | bytes,
                 protocol_version: int | None = None) -> Any:
        connected = super()._connect(cmd, path, protocol_version)
        # the socket is only reachable through the buffered reader dulwich made of it
        reader = getattr(connected[0].read, "__self__", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(self._read_timeout)
        return connected


def git_blob_id(data: bytes) -> str:
    h = git_blob_hasher(len(data))
    h.update(data)
    return h.hexdigest()


class GitFetcher(BaseFetcher):
    """Fetch a git repository (any transport dulwich speaks) into the dagfetch cache."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.location: GitLocation = parse_location(source.url)
        self.ref: RefSpec = parse_ref(source.ref)
        self.auth: GitAuth = auth_from_connection(source.connection)
        self.options = parse_options(GitOptions, source.options, field=f"{source.field}.options")
        self.depth: int | None = self.options.depth or None
        self.submodules = self.options.submodules
        self.lfs = self.options.lfs
        # HTTP requests: the option, else the repository's limits.read_timeout
        self.timeout = self.options.timeout or source.limits.read_timeout
        self.protocol_version: int | None = self.options.protocol_version
        self.where = f"{self.location.display} (ref {self.ref.text})"
        self._tmp_work: Path | None = None
        self._listed_commit: str | None = None
        self._listed_blobs: dict[str, bytes] = {}  # blob id -> bytes, see KEEP_LISTED_BYTES
        self._kept_bytes = 0
        work_dir = source.work_dir
        if work_dir is None:  # used outside a cache (tests, one-off listings)
            self._tmp_work = Path(tempfile.mkdtemp(prefix="dagfetch-git-"))
            work_dir = self._tmp_work
        self.store = GitStore(work_dir, self.location.display)
        self._client: GitClient | None = None
        self._ssh: SshSession | None = None
        self.capabilities = Capabilities(
            incremental=True, versioned=True, named_versions=True, concurrent=False
        )
        self.ref_lookups = 0  # round trips to learn the ref's commit (tests read it)
        self.pack_fetches = 0

    # -- the protocol ------------------------------------------------------------------------

    def list(self) -> Listing:
        commit = self.ref.commit or self._ls_remote()
        advertised = self.ref.commit is None  # the remote named this commit itself
        return self._with_store(
            lambda store: self._listing(store, commit, move_tip=True, advertised=advertised)
        )

    def list_version(self, version_id: str) -> Listing:
        commit = version_id.strip().lower()
        if not FULL_SHA.match(commit):
            raise VersionUnavailableError(
                f"{self.location.display}: {version_id!r} is not a full commit id (40 hex digits)"
            )
        return self._with_store(lambda store: self._listing(store, commit, move_tip=False))

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        budget = ByteBudget(self.source.limits, repo_field=self.source.field)

        def write_all(store: GitStore) -> None:
            self._ensure_blobs(store, files)
            made: set[str] = set()
            kept, self._listed_blobs = self._listed_blobs, {}
            for f in files:
                data = kept.pop(f.token, None)
                if data is None:
                    data = store.blob(f.token.encode())
                if git_blob_id(data) != f.token:
                    raise StoreCorrupt(f"{self.where}: blob {f.token} of {f.path!r} is damaged "
                                       "in the local object store")
                if len(data) != f.size:
                    # the listing's size came from a damaged sizes file: forget it, so the
                    # next listing reads the blobs again
                    store.forget_blob_sizes()
                # sizes were checked on the listing; this holds when they were remembered
                # wrong (the size file is only a cache), before a byte is written
                budget.file(f.path, -1).add(len(data))
                target = os.path.join(dest, f.path)
                parent = os.path.dirname(target)
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                with open(target, "wb") as fh:
                    fh.write(data)
                if on_file_done is not None:
                    on_file_done(f)

        self._with_store(write_all)

    def close(self) -> None:
        self._listed_blobs = {}
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
        """The dulwich client for this location, built once, credentials passed in memory."""
        if self._client is not None:
            return self._client
        loc = self.location
        client: GitClient
        if loc.transport == "git":
            client = _TimedTCPGitClient(loc.host or "", loc.port,
                                        read_timeout=self.source.limits.read_timeout)
        elif loc.transport == "http":
            port = f":{loc.port}" if loc.port else ""
            password = self.auth.password.reveal() if self.auth.password else None
            username = self.auth.username or loc.username
            client = HttpGitClient(
                f"{loc.scheme}://{loc.host}{port}/", username=username,
                password=password if username else None, timeout=self.timeout,
            )
        elif loc.transport == "ssh":
            self._ssh = SshSession(self.auth)
            client = SSHGitClient(
                loc.host or "", loc.port, username=self.auth.username or loc.username,
                key_filename=self._ssh.key_filename, ssh_command=self._ssh.command,
            )
        else:
            client = LocalGitClient()
        self._client = client
        return client

    def _ls_remote(self) -> str:
        """One round trip: the commit the configured ref points at."""
        client = self.client()
        self.ref_lookups += 1
        with translated(self.where, conn_id=self.auth.conn_id):
            result = client.get_refs(
                self.location.path.encode(), protocol_version=self.protocol_version,
                ref_prefix=self.ref.prefixes,
            )
        refs: dict[bytes, bytes] = {k: v for k, v in result.refs.items() if v is not None}
        for name in self.ref.candidates:
            key = name.encode()
            value = refs.get(key + b"^{}") or refs.get(key)
            if value is not None:
                return value.decode()
        if self.ref.text == "HEAD":
            raise RemoteNotFoundError(f"{self.where}: the repository has no commits (no HEAD)")
        hint = (" (an abbreviated commit id cannot be looked up remotely: give all 40 hex "
                "digits)" if self.ref.looks_like_short_sha else "")
        raise RemoteNotFoundError(f"{self.where}: no branch or tag {self.ref.text!r} on the "
                                  f"remote{hint}")

    def _fetch_commit(self, store: GitStore, commit: str, *, advertised: bool = False) -> None:
        client = self.client()
        self.pack_fetches += 1
        path = self.location.path
        try:
            store.fetch(client, path, lambda refs: [commit.encode()], depth=self.depth,
                        where=self.where, conn_id=self.auth.conn_id)
        except WantRefused as exc:
            if client.protocol_version != 2:
                # a v0/v1 server that sends only ref tips: look for the commit in history
                self._deepen_until(store, commit)
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

    def _deepen_until(self, store: GitStore, commit: str) -> None:
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
            store.fetch(self.client(), self.location.path, tips, depth=depth,
                        where=self.where, conn_id=self.auth.conn_id)
            if store.has_commit(commit):
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
        listing = self._build_listing(store, commit)
        # the core fetches only files of a listing it just got from this fetcher, so this is
        # the commit to ask the remote for when a blob is missing from the store
        self._listed_commit = commit
        if move_tip:
            store.set_tip(commit)
        return listing

    def _ensure_blobs(self, store: GitStore, files: Iterable[RemoteFile]) -> None:
        """Blobs the store lacks (it was rebuilt since the listing) come from fetching the
        commit last listed (records written before 0.1.0 name it per file)."""
        missing = [f for f in files if not store.has_object(f.token.encode())]
        commits = sorted({f.extra.get("commit") or self._listed_commit or "" for f in missing})
        for commit in commits:
            if not FULL_SHA.match(commit):
                raise FetchError(f"{self.where}: blob {missing[0].token} of "
                                 f"{missing[0].path!r} is not in the local store and its "
                                 "commit is unknown")
            if not store.has_commit(commit):
                self._fetch_commit(store, commit)

    def _build_listing(self, store: GitStore, commit: str) -> Listing:
        tree = store.commit(commit).tree
        subdir = self.source.subdir
        if subdir:
            for part in subdir.split("/"):
                entry = {name: (mode, sha) for name, mode, sha in store.tree(tree).iteritems()}
                found = entry.get(part.encode())
                if found is None or not stat.S_ISDIR(found[0]):
                    raise RemoteNotFoundError(
                        f"{self.where}: commit {commit[:12]} has no folder {subdir!r}"
                    )
                tree = found[1]
        files: builtins.list[RemoteFile] = []
        lfs: builtins.list[str] = []
        self._listed_blobs = {}
        self._kept_bytes = 0
        known = store.blob_sizes()
        seen: BlobSizes = {}
        self._walk(store, tree, "", commit, files, lfs, known, seen)
        if seen.keys() - known.keys():
            store.save_blob_sizes(seen)
        if lfs:
            self._report_lfs(lfs, files)
        return Listing.of(files, commit, ref=self.ref.text)

    def _walk(self, store: GitStore, tree: bytes, prefix: str, commit: str,
              out: builtins.list[RemoteFile], lfs: builtins.list[str],
              known: BlobSizes, seen: BlobSizes) -> None:
        """Collect the files under ``tree``; sizes come from ``known`` where remembered (a
        blob is read only the first time it is listed); ``seen`` gets this listing's.

        Iterative, and bounded by the limits while it goes: a tree 10,000 folders deep
        ended in RecursionError, and a 1.3 KB repository of trees sharing subtrees can
        describe 10^9 files (the walk stops at ``max_files``, not at the end of memory)."""
        limits = self.source.limits
        field = f"{self.source.field}.limits"
        pending: builtins.list[tuple[bytes, str, int]] = [(tree, prefix, 1)]
        while pending:
            tree_id, folder, depth = pending.pop()
            names: set[bytes] = set()
            for raw_name, mode, sha in store.tree_entries(tree_id):
                try:
                    name = raw_name.decode("utf-8")
                except UnicodeDecodeError:
                    raise FetchError(f"{self.where}: commit {commit[:12]} has a path that is "
                                     f"not UTF-8: {folder}{raw_name!r}") from None
                path = f"{folder}{name}"
                if raw_name in names:
                    raise UnsafePathError(
                        path, f"commit {commit[:12]} holds this name twice in one tree (git "
                        "fsck: duplicateEntries); which entry a checkout keeps is undefined")
                names.add(raw_name)
                if stat.S_ISDIR(mode):
                    if depth >= limits.max_path_depth:
                        raise LimitExceeded(
                            path, f"a folder {depth} levels deep: its files would be more than "
                            f"max_path_depth = {limits.max_path_depth} levels deep",
                            f"{field}.max_path_depth")
                    pending.append((sha, f"{path}/", depth + 1))
                    continue
                self._entry(store, path, mode, sha, out, lfs, known, seen)
                if len(out) > limits.max_files:
                    raise LimitExceeded(
                        path, f"more than max_files = {limits.max_files} files in commit "
                        f"{commit[:12]}", f"{field}.max_files")

    def _entry(self, store: GitStore, path: str, mode: int, sha: bytes,
               out: builtins.list[RemoteFile], lfs: builtins.list[str],
               known: BlobSizes, seen: BlobSizes) -> None:
        """One non-folder entry of a tree: a submodule, a symlink or a file."""
        blob_id = sha.decode()
        if mode & 0o170000 == GITLINK:
            if self.submodules == "error":
                raise FetchError(
                    f"{self.where}: {path!r} is a git submodule (pinned at {blob_id[:12]}) "
                    "and dagfetch does not fetch submodules; set options.submodules = "
                    "'skip' to leave it out"
                )
            log.warning("%s: leaving out submodule %r (options.submodules = 'skip')",
                        self.where, path)
        elif stat.S_ISLNK(mode):
            target = store.blob(sha).decode("utf-8", "surrogateescape")
            out.append(RemoteFile(path, 0, blob_id, kind="symlink", target=target))
        else:
            # a blob under many paths (shared trees) is read once per listing
            found = seen.get(blob_id) or known.get(blob_id)
            if found is None:
                data = store.blob(sha)
                found = (len(data), len(data) < LFS_POINTER_MAX and data.startswith(LFS_MAGIC))
                if self._kept_bytes + len(data) <= KEEP_LISTED_BYTES:
                    self._listed_blobs[blob_id] = data
                    self._kept_bytes += len(data)
            seen[blob_id] = found
            size, is_lfs = found
            if is_lfs:
                lfs.append(path)
            out.append(RemoteFile(path, size, blob_id, f"git-blob:{blob_id}"))

    def _report_lfs(self, paths: builtins.list[str], files: builtins.list[RemoteFile]) -> None:
        shown = ", ".join(repr(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
        if self.lfs == "error":
            raise FetchError(
                f"{self.where}: {len(paths)} Git LFS pointer file(s) ({shown}); dagfetch does "
                "not fetch LFS content. Set options.lfs = 'skip' to leave them out or 'warn' "
                "to take the pointer files as they are"
            )
        if self.lfs == "skip":
            skipped = set(paths)
            files[:] = [f for f in files if f.path not in skipped]
            log.warning("%s: left out %d Git LFS pointer file(s): %s", self.where,
                        len(paths), shown)
        else:
            log.warning("%s: %d Git LFS pointer file(s) taken as pointers, not content: %s",
                        self.where, len(paths), shown)
