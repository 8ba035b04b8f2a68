"""The per-repository bare object store under ``Source.work_dir``.

One bare repository (``<work_dir>/git``) holds every commit dagfetch fetched for the
repository, shallow by default, with their trees but not their blobs: the cache's content
store holds the files (a received pack's blobs go to the fetch, see
:mod:`~dagfetch.backends.git.intake`). It keeps no remote URL and no credentials: dulwich's
clients are handed the location and the credentials on each call instead of a config.

The store must survive a process killed at any point, so opening it under its lock:

- removes every ``*.lock`` file dulwich left behind (nobody else can be writing: we hold
  the store lock, an OS lock the kernel releases when a process dies);
- removes half-written packs (``tmp_pack_*``, a ``.pack`` without its ``.idx``);
- rebuilds the store from scratch when it is not a readable repository.

The one ref it keeps, ``refs/heads/dagfetch-tip``, names the last commit fetched, so the
next fetch tells the server what we already have and gets only new objects.

Beside it, the sizes of the last listing's blobs (:mod:`~dagfetch.backends.git.sizes`).
"""

from __future__ import annotations

import builtins
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import IO

from dulwich.client import GitClient
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag, Tree, parse_tree
from dulwich.pack import DeltaCycle, UnresolvedDeltas
from dulwich.refs import Ref
from dulwich.repo import Repo

from dagfetch.backends.git import sizes
from dagfetch.backends.git.errors import translate, translated
from dagfetch.backends.git.intake import BlobShelf, git_blob_id, read_pack, remove_dead_spills
from dagfetch.backends.git.sizes import BlobSizes
from dagfetch.errors import FetchError
from dagfetch.oslock import exclusive_lock
from dagfetch.protocol import HeldContents
from dagfetch.redact import get_logger

log = get_logger(__name__)

TIP = Ref(b"refs/heads/dagfetch-tip")
_SPOOL = 8 << 20
# Every fetch adds one pack; a lookup tries each pack's index in turn, so a long `--watch`
# run would slow down pack by pack. Past this many the store is repacked into one (it holds
# commits and trees only, so that is small). git's own gc.autoPackLimit is 50.
PACK_LIMIT = 20


class GitStore:
    """A bare repository used as an object store. Use :meth:`open` around every access."""

    def __init__(self, work_dir: Path, where: str) -> None:
        self.work_dir = work_dir
        self.path = work_dir / "git"
        self.where = where
        self._repo: Repo | None = None
        # the cache's files by blob id (the fetcher is handed it by the core): delta bases
        self.held: HeldContents | None = None

    @contextmanager
    def open(self, timeout: float = 600.0) -> Iterator[GitStore]:
        """Hold the store lock, repair what an interrupted run left, and open the repo."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.work_dir / "git.lock", timeout):
            remove_dead_spills(self.work_dir)
            self._repo = self._open_repaired()
            try:
                yield self
            finally:
                self._repo.close()
                self._repo = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:  # pragma: no cover - a programming error, not a user's
            raise RuntimeError("GitStore used outside open()")
        return self._repo

    def _open_repaired(self) -> Repo:
        if self.path.is_dir():
            for dirpath, _, names in os.walk(self.path):
                for name in names:
                    if name.startswith(sizes.LEFTOVER_PREFIXES):
                        os.unlink(os.path.join(dirpath, name))  # a write killed half-way
                    elif name.endswith(".lock"):
                        log.info("%s: removing stale lock %s", self.where, name)
                        os.unlink(os.path.join(dirpath, name))
            try:
                repo = Repo(str(self.path), bare=True)
                repo.object_store.prune(grace_period=0)
                return repo
            except Exception as exc:  # any failure to open means: start over
                log.warning("%s: local git store unreadable (%s: %s); rebuilding it",
                            self.where, type(exc).__name__, exc)
        return self._init()

    def _init(self) -> Repo:
        shutil.rmtree(self.path, ignore_errors=True)
        tmp = self.path.with_name("git.new")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        Repo.init_bare(str(tmp)).close()
        os.replace(tmp, self.path)
        return Repo(str(self.path), bare=True)

    def rebuild(self) -> None:
        """Throw the store away and start empty (after corruption was detected)."""
        log.warning("%s: rebuilding the local git store and fetching again", self.where)
        try:
            self.repo.close()
        except BufferError:  # a damaged pack's map still referenced; the files go anyway
            log.debug("%s: a pack of the old store was still mapped", self.where)
        self._repo = self._init()

    # -- reading -------------------------------------------------------------------------

    def has_commit(self, sha: str) -> bool:
        with translated(self.where, local=True):
            oid = ObjectID(sha.encode())
            if oid not in self.repo.object_store:
                return False
            return isinstance(self.repo.object_store[oid], Commit)

    def commit(self, sha: str) -> Commit:
        with translated(self.where, local=True):
            obj = self.repo.object_store[ObjectID(sha.encode())]
        if not isinstance(obj, Commit):
            from dagfetch.errors import FetchError

            raise FetchError(f"{self.where}: {sha} is a {obj.type_name.decode()}, not a commit")
        return obj

    def tree(self, sha: bytes) -> Tree:
        with translated(self.where, local=True):
            obj = self.repo.object_store[ObjectID(sha)]
            if not isinstance(obj, Tree):
                raise TypeError(f"{sha.decode()} is not a tree")
            return obj

    def tree_entries(self, sha: bytes) -> builtins.list[tuple[bytes, int, bytes]]:
        """The entries of a tree as its bytes hold them, in order and duplicates included
        (a parsed :class:`Tree` is a dict: a name written twice keeps only the last entry,
        which hid a symlink ``a`` followed by a tree ``a/`` from every check)."""
        with translated(self.where, local=True):
            type_num, raw = self.repo.object_store.get_raw(ObjectID(sha))
            if type_num != Tree.type_num:
                raise TypeError(f"{sha.decode()} is not a tree")
            return [(name, mode, bytes(hexsha))
                    for name, mode, hexsha in parse_tree(raw, sha_len=20)]

    def blob(self, sha: bytes) -> bytes | None:
        """A blob's bytes, if the store holds it: stores written by dagfetch 0.1 kept every blob
        (now a received pack's blobs go to the fetch and the content store only)."""
        with translated(self.where, local=True):
            oid = ObjectID(sha)
            if oid not in self.repo.object_store:
                return None
            obj = self.repo.object_store[oid]
            if not isinstance(obj, Blob):
                raise TypeError(f"{sha.decode()} is not a blob")
            return obj.as_raw_string()

    def peel(self, sha: str) -> str:
        """``sha``, or the object an annotated tag of that id points at (tags followed)."""
        with translated(self.where, local=True):
            obj = self.repo.object_store[ObjectID(sha.encode())]
            while isinstance(obj, Tag):
                obj = self.repo.object_store[obj.object[1]]
            return obj.id.decode()

    def has_object(self, sha: bytes) -> bool:
        with translated(self.where, local=True):
            return ObjectID(sha) in self.repo.object_store

    # -- remembered blob sizes -----------------------------------------------------------

    def blob_sizes(self) -> BlobSizes:
        """The sizes remembered from the last listing (empty when none are)."""
        return sizes.load(self.path)

    def save_blob_sizes(self, remembered: BlobSizes) -> None:
        """Replace the remembered sizes (the blobs of the newest listing, so the file stays
        as small as one listing)."""
        sizes.save(self.path, remembered)

    def forget_blob_sizes(self) -> None:
        sizes.forget(self.path)

    # -- fetching ------------------------------------------------------------------------

    def fetch(
        self,
        client: GitClient,
        path: str,
        wants: Callable[[dict[bytes, bytes]], list[bytes]],
        shelf: BlobShelf,
        *,
        depth: int | None,
        where: str,
        conn_id: str | None,
        ref_prefix: list[bytes] | None = None,
        protocol_version: int | None = None,
        fresh: bool = False,
    ) -> dict[bytes, bytes]:
        """Fetch what ``wants`` picks from the advertised refs (only those under
        ``ref_prefix`` where the protocol can say so); return those refs. Nothing is
        received, nor written, when ``wants`` picks only objects the store holds.

        The server is told the tip we hold, so it sends only what is new; ``fresh`` tells
        it nothing and asks even for objects the store holds (their blobs went to the
        content store: this is how a blob the fetch needs is had again).

        The pack is spooled in memory (on disk past 8 MiB, inside the store) and read
        once complete and verified (:func:`~dagfetch.backends.git.intake.read_pack`): its
        blobs go on ``shelf``, its commits and trees into the store, so a broken transfer
        adds nothing."""
        repo = self.repo
        with translated(self.where, local=True):
            tip = None if fresh else repo.refs.as_dict().get(TIP)
            if tip is not None and tip not in repo.object_store:
                tip = None
            if tip is not None:
                self._mark_shallow_if_parents_missing(tip)
            walker = repo.get_graph_walker([tip] if tip is not None else [])

        def determine_wants(
            refs: Mapping[Ref, ObjectID], depth: int | None = None
        ) -> list[ObjectID]:
            picked = [ObjectID(w) for w in wants({bytes(k): bytes(v) for k, v in refs.items()})]
            return picked if fresh else [w for w in picked if w not in repo.object_store]

        try:
            with SpooledTemporaryFile(
                max_size=_SPOOL, prefix="incoming-", dir=str(self.path)
            ) as spool, translated(where, conn_id=conn_id):
                result = client.fetch_pack(
                    path.encode(), determine_wants, walker, spool.write, depth=depth or None,
                    ref_prefix=ref_prefix, protocol_version=protocol_version,
                )
                if spool.tell():
                    received = self._read_thin(client, path, spool, shelf, where=where,
                                               conn_id=conn_id,
                                               protocol_version=protocol_version)
                    if received is None and fresh:
                        # a whole fetch needs no base from outside its pack: a server that
                        # sends one anyway would have us fetch again for ever
                        raise FetchError(f"{where}: the server sent a pack with deltas on "
                                         "objects it does not send (damaged or hostile)")
                    if received is None:  # the bases would not come: everything afresh
                        return self.fetch(client, path, wants, shelf, depth=depth,
                                          where=where, conn_id=conn_id, ref_prefix=ref_prefix,
                                          protocol_version=protocol_version, fresh=True)
                    self._add(received)
                if result.new_shallow or result.new_unshallow:
                    repo.update_shallow(result.new_shallow, result.new_unshallow)
        except BaseException:
            # a pack that failed verification is left as tmp_pack_*: we hold the lock, so
            # every temporary pack is ours and can go
            repo.object_store.prune(grace_period=0)
            raise
        return {k: v for k, v in result.refs.items() if v is not None}

    def _read_thin(self, client: GitClient, path: str, spool: IO[bytes], shelf: BlobShelf, *,
                   where: str, conn_id: str | None,
                   protocol_version: int | None) -> builtins.list[ShaFile] | None:
        """The objects of the received pack, its blobs put on ``shelf``. A delta on a blob
        the store gave away (the server thinks we hold it: a file changed a little) needs
        that base: the cache's copy (:meth:`_base`) when it holds one, else it is asked for
        by id, on a second connection, and the pack read again; None when the server will
        not send it."""
        try:
            return read_pack(spool, shelf, self._base)
        except DeltaCycle:
            raise
        except UnresolvedDeltas as exc:
            bases = [ObjectID(sha) for sha in exc.shas]
        log.debug("%s: asking for %d delta base(s) the store gave away", where, len(bases))
        try:
            with SpooledTemporaryFile(
                max_size=_SPOOL, prefix="incoming-", dir=str(self.path)
            ) as base_spool:
                client.fetch_pack(path.encode(), lambda refs, depth=None: bases,
                                  self.repo.get_graph_walker([]), base_spool.write,
                                  protocol_version=protocol_version)
                if base_spool.tell():
                    read_pack(base_spool, shelf, self._base)
            return read_pack(spool, shelf, self._base)
        except Exception as exc:  # refused, hung up, still unresolved: take the slow road
            log.info("%s: the delta bases did not come (%s); fetching the commit whole",
                     where, translate(exc, where, conn_id=conn_id))
            return None

    def _base(self, oid: ObjectID) -> tuple[int, bytes]:
        """A delta base outside the pack: an object of the store, else the cache's copy of
        the blob (:attr:`held`) if its bytes hash to ``oid``; KeyError when neither has it
        (a damaged copy is not used: the remote is asked instead)."""
        try:
            return self.repo.object_store.get_raw(oid)
        except KeyError:
            data = self.held(oid.decode()) if self.held is not None else None
            if data is None:
                raise
            if git_blob_id(data) != oid.decode():
                log.warning("%s: the cached copy of blob %s is damaged; asking the remote "
                            "for it", self.where, oid.decode())
                raise
        return Blob.type_num, data

    def _add(self, objects: builtins.list[ShaFile]) -> None:
        """Add the objects the store lacks as one pack (a fresh fetch brings trees again)."""
        store = self.repo.object_store
        new = [(obj, None) for obj in objects if obj.id not in store]
        if new:
            store.add_objects(new)
        if len(store.packs) > PACK_LIMIT:
            # the new pack is written before the old ones go, so a process killed here
            # leaves duplicates (harmless) or a tmp_pack_* that the next open removes
            store.repack()

    def set_tip(self, sha: str) -> None:
        """Remember ``sha`` as the newest commit we hold (negotiation starts from it)."""
        with translated(self.where, local=True):
            oid = ObjectID(sha.encode())
            self._mark_shallow_if_parents_missing(oid)
            if self.repo.refs.as_dict().get(TIP) != oid:
                self.repo.refs[TIP] = oid

    def _mark_shallow_if_parents_missing(self, oid: bytes) -> None:
        """A commit whose parents we lack must be declared shallow, or a server would think
        we hold its whole history. Fetches record this themselves; a run killed between
        adding a pack and writing ``shallow`` would not have."""
        commit = self.repo.object_store[ObjectID(oid)]
        if not isinstance(commit, Commit):
            return
        store = self.repo.object_store
        if any(p not in store for p in commit.parents) and oid not in self.repo.get_shallow():
            self.repo.update_shallow({ObjectID(oid)}, None)
