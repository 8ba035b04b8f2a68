"""A commit's tree as a dagfetch listing: one RemoteFile per blob, bounded by the limits.

A listing needs each file's size. It comes from the sizes remembered per blob id
(:mod:`~dagfetch.backends.git.sizes`), else from the blob itself: on the fetcher's
shelf when it just arrived, in the store when an old store still keeps it. A blob that is in
none of them (its bytes went to the content store and its size was forgotten) raises
:class:`BlobsMissing`, and the fetcher asks the remote for the commit afresh.
"""

from __future__ import annotations

import builtins
import stat
from collections.abc import Callable

from dagfetch.backends.git.sizes import BlobSizes
from dagfetch.backends.git.store import GitStore
from dagfetch.errors import FetchError, LimitExceeded, RemoteNotFoundError, UnsafePathError
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import Source
from dagfetch.redact import get_logger

log = get_logger(__name__)

LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX = 1024
GITLINK = 0o160000

# blob id -> its bytes, if this process can have them without asking the remote
BlobSource = Callable[[GitStore, str], bytes | None]


class BlobsMissing(Exception):
    """A blob the listing needs is neither on the shelf nor in the store (internal: the
    fetcher fetches the commit afresh and lists again)."""


class TreeLister:
    """Walks one commit's tree for one repository's source (subdir, limits, options)."""

    def __init__(self, source: Source, where: str, *, submodules: str, lfs: str,
                 ref: str, blob: BlobSource) -> None:
        self.source = source
        self.where = where
        self.submodules = submodules
        self.lfs = lfs
        self.ref = ref
        self.blob = blob

    def listing(self, store: GitStore, commit: str, *, keep_sizes: bool = False) -> Listing:
        """The files of ``commit``. The sizes file then holds this listing's blobs (with
        ``keep_sizes``, the ones it held too: an old commit listed by id must not make the
        next listing of the tip read its blobs again)."""
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
        known = store.blob_sizes()
        seen: BlobSizes = {}
        self._walk(store, tree, commit, files, lfs, known, seen)
        if seen.keys() - known.keys():
            store.save_blob_sizes({**known, **seen} if keep_sizes else seen)
        if lfs:
            self._report_lfs(lfs, files)
        return Listing.of(files, commit, ref=self.ref)

    def _walk(self, store: GitStore, tree: bytes, commit: str,
              out: builtins.list[RemoteFile], lfs: builtins.list[str],
              known: BlobSizes, seen: BlobSizes) -> None:
        """Collect the files under ``tree``; sizes come from ``known`` where remembered (a
        blob is read only the first time it is listed); ``seen`` gets this listing's.

        Iterative, and bounded by the limits while it goes: a tree 10,000 folders deep
        ended in RecursionError, and a 1.3 KB repository of trees sharing subtrees can
        describe 10^9 files (the walk stops at ``max_files``, not at the end of memory)."""
        limits = self.source.limits
        field = f"{self.source.field}.limits"
        pending: builtins.list[tuple[bytes, str, int]] = [(tree, "", 1)]
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
                blob_id = sha.decode()
                kind = mode & 0o170000
                if kind != GITLINK and kind != stat.S_IFLNK:
                    # a file, the common entry, inline (one pass per file of every listing)
                    found = seen.get(blob_id) or known.get(blob_id)
                    if found is None:
                        found = self._size(store, blob_id)
                    seen[blob_id] = found
                    if found[1]:
                        lfs.append(path)
                    out.append(RemoteFile(path, found[0], blob_id, f"git-blob:{blob_id}"))
                else:
                    self._entry(store, path, mode, blob_id, out)
                if len(out) > limits.max_files:
                    raise LimitExceeded(
                        path, f"more than max_files = {limits.max_files} files in commit "
                        f"{commit[:12]}", f"{field}.max_files")

    def _entry(self, store: GitStore, path: str, mode: int, blob_id: str,
               out: builtins.list[RemoteFile]) -> None:
        """A submodule or a symlink of a tree (files are listed inline by the caller)."""
        if mode & 0o170000 == GITLINK:
            if self.submodules == "error":
                raise FetchError(
                    f"{self.where}: {path!r} is a git submodule (pinned at {blob_id[:12]}) "
                    "and dagfetch does not fetch submodules; set options.submodules = "
                    "'skip' to leave it out"
                )
            log.warning("%s: leaving out submodule %r (options.submodules = 'skip')",
                        self.where, path)
        else:
            target = self._read(store, blob_id).decode("utf-8", "surrogateescape")
            out.append(RemoteFile(path, 0, blob_id, kind="symlink", target=target))

    def _size(self, store: GitStore, blob_id: str) -> tuple[int, bool]:
        """A blob's size and whether it looks like a Git LFS pointer, from its bytes."""
        data = self._read(store, blob_id)
        return len(data), len(data) < LFS_POINTER_MAX and data.startswith(LFS_MAGIC)

    def _read(self, store: GitStore, blob_id: str) -> bytes:
        data = self.blob(store, blob_id)
        if data is None:
            raise BlobsMissing(blob_id)
        return data

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
