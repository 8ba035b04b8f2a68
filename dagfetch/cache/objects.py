"""Files stored once, named by the sha256 of their bytes, and hard-linked into versions.

A new version therefore costs only its changed files. Where the file system refuses hard
links, files are copied instead (correct, just not free).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

import attrs

from dagfetch.cache.layout import CacheLayout
from dagfetch.errors import VerificationError
from dagfetch.models import Version
from dagfetch.protocol import HeldContents

_CHUNK = 1 << 20
# the errors of a file system that refuses hard links (the cache copies instead)
NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def git_blob_hasher(size: int) -> hashlib._Hash:
    """A sha1 primed with git's blob header: fed the ``size`` bytes, it gives the blob id."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {size}\0".encode())
    return h


def write_bytes(path: str, data: bytes, flags: int, mode: int) -> None:
    """Write ``data`` to ``path``, opened with ``O_WRONLY | O_CREAT | flags`` and ``mode``:
    three system calls for a small file, where ``Path.write_bytes`` makes several more."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags | getattr(os, "O_BINARY", 0), mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _checker(expect_digest: str | None, size: int) -> tuple[hashlib._Hash | None, str, str]:
    """The hasher checking ``expect_digest`` (``algo:hex``) of ``size`` bytes, if it names
    an algorithm dagfetch checks; (hasher, algo, expected hex)."""
    if not expect_digest:
        return None, "", ""
    algo, _, want = expect_digest.partition(":")
    if algo == "git-blob":
        return git_blob_hasher(size), algo, want
    if algo in ("md5", "sha1", "sha256"):
        return hashlib.new(algo, usedforsecurity=False), algo, want
    return None, algo, want


def _compare(check: hashlib._Hash | None, algo: str, want: str, name: str) -> None:
    if check is not None and check.hexdigest() != want.lower():
        raise VerificationError(f"{name}: {algo} is {check.hexdigest()}, expected {want}")


def hash_file(path: Path, expect_digest: str | None = None) -> tuple[str, int]:
    """Return (sha256, size) of ``path``; check ``expect_digest`` (``algo:hex``) on the way."""
    sha = hashlib.sha256()
    # plain descriptors: verifying a version calls this once per downloaded file
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        needs_size = (expect_digest or "").startswith("git-blob:")
        check, algo, want = _checker(expect_digest, os.fstat(fd).st_size if needs_size else 0)
        size = 0
        while chunk := os.read(fd, _CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if check is not None:
                check.update(chunk)
    finally:
        os.close(fd)
    _compare(check, algo, want, path.name)
    return sha.hexdigest(), size


def hash_bytes(data: bytes, name: str, expect_digest: str | None = None) -> str:
    """The sha256 of ``data`` (a download held in memory, called ``name`` in errors); check
    ``expect_digest`` as :func:`hash_file` does. A sha256 digest is checked by that one hash."""
    sha = hashlib.sha256(data).hexdigest()
    if expect_digest and expect_digest.startswith("sha256:"):
        want = expect_digest.partition(":")[2]
        if sha != want.lower():
            raise VerificationError(f"{name}: sha256 is {sha}, expected {want}")
        return sha
    check, algo, want = _checker(expect_digest, len(data))
    if check is not None:
        check.update(data)
    _compare(check, algo, want, name)
    return sha


@attrs.frozen
class ObjectStore:
    layout: CacheLayout
    _objects: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_objects", str(self.layout.objects))

    def has(self, sha256: str, size: int | None = None) -> bool:
        """Whether the store holds the object (of ``size`` bytes, when given: a truncated or
        grown object is not reused, so damage does not spread into the next version)."""
        # plain strings, no os.path.join: a sync asks this once per file of the version
        try:
            st = os.stat(f"{self._objects}/{sha256[:2]}/{sha256[2:]}")
        except OSError:
            return False
        return size is None or st.st_size == size

    def read(self, sha256: str, size: int) -> bytes | None:
        """The object's bytes, or None when the store lacks it or holds it at another size
        (the bytes are not hashed: a caller that needs them right checks them)."""
        try:
            with open(os.path.join(self._objects, sha256[:2], sha256[2:]), "rb") as fh:
                data = fh.read(size + 1)
        except OSError:
            return None
        return data if len(data) == size else None

    def by_token(self, version: Version | None) -> HeldContents:
        """A reader of ``version``'s files by the change token each was listed with, what
        the core lends a fetcher (:data:`~dagfetch.protocol.HELD_CONTENTS`). Unchecked
        bytes: the fetcher checks them against the token. The index is built on the first
        question, which most syncs never ask."""
        held: dict[str, tuple[str, int]] = {}

        def read(token: str) -> bytes | None:
            if not held and version is not None:
                held.update((f.token, (f.sha256, f.size)) for f in version.files
                            if f.kind == "file" and f.token)
            found = held.get(token)
            return self.read(*found) if found is not None else None

        return read

    def ingest(self, path: Path, sha256: str) -> None:
        """Move a verified file into the store (or drop it if the store has it already)."""
        # plain strings and no mkdir per file: publishing calls this once per new file
        folder = os.path.join(self._objects, sha256[:2])
        target = os.path.join(folder, sha256[2:])
        try:
            if os.stat(target).st_size == os.stat(path).st_size:
                os.unlink(path)
                return
            # a damaged object of the wrong size: the verified download replaces it
        except FileNotFoundError:
            pass
        os.chmod(path, READ_ONLY)
        try:
            os.replace(path, target)  # atomic; a racing writer of the same object wrote equal bytes
        except FileNotFoundError:
            if not os.path.exists(path):
                raise
            os.makedirs(folder, exist_ok=True)
            os.replace(path, target)

    def adopt(self, path: str, sha256: str, size: int, *, read_only: bool = False) -> bool:
        """Make a verified file, already at its place in a tree being built, the store's
        object: hard-linked in as it is (a complete file appears under the object's name in
        one step), or, when the store holds the object already at ``size`` bytes, replaced in
        the tree by a link to that one (contents are stored once). Returns whether ``path``
        is still there: False only where links fail and the file was moved into the store
        (the tree's copy is then made from it). ``read_only``: its mode is the store's already
        (no chmod). The caller holds the objects lock."""
        folder = f"{self._objects}/{sha256[:2]}"
        target = f"{folder}/{sha256[2:]}"
        if not read_only:
            os.chmod(path, READ_ONLY)
        try:
            os.link(path, target)
            return True
        except FileNotFoundError:
            if not os.path.lexists(path):
                raise
            os.makedirs(folder, exist_ok=True)
            try:
                os.link(path, target)
                return True
            except FileExistsError:  # pragma: no cover - we hold the objects lock
                pass
            except OSError as exc:
                if exc.errno not in NO_LINK:
                    raise
                return self._move_in(path, target)
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in NO_LINK:
                raise
            return self._move_in(path, target)
        try:
            same = os.stat(target).st_size == size
        except FileNotFoundError:  # pragma: no cover - we hold the objects lock
            same = False
        if same:
            os.unlink(path)
            self.link_into(sha256, path)
            return True
        # a damaged object of the wrong size: the verified file replaces it, atomically
        tmp = f"{folder}/.{sha256[2:]}.tmp"
        try:
            os.link(path, tmp)
        except FileExistsError:
            os.unlink(tmp)  # a killed replacement's: we hold the lock, nobody else writes it
            os.link(path, tmp)
        except OSError as exc:
            if exc.errno not in NO_LINK:
                raise
            return self._move_in(path, target)
        os.replace(tmp, target)
        return True

    @staticmethod
    def _move_in(path: str, target: str) -> bool:
        """Where links fail: the verified file becomes the object (an existing object of the
        same size is kept); the tree gets a copy later."""
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            if os.stat(target).st_size == os.stat(path).st_size:
                os.unlink(path)
                return False
        except FileNotFoundError:
            pass
        os.replace(path, target)
        return False

    def write(self, sha256: str, data: bytes, made: set[str]) -> None:
        """Store verified bytes held in memory as the object: written read-only to a
        temporary name beside it, then renamed (a reader never sees a partial object). The
        caller holds the objects lock; ``made`` remembers the prefix folders known to exist,
        so a version of many files costs one ``mkdir`` per folder, not per file."""
        folder = os.path.join(self._objects, sha256[:2])
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        tmp = os.path.join(folder, f".{sha256[2:]}.tmp")
        write_bytes(tmp, data, os.O_TRUNC, READ_ONLY)
        os.replace(tmp, os.path.join(folder, sha256[2:]))

    def link_into(self, sha256: str, dest: str | Path) -> None:
        """Make ``dest`` a read-only hard link to the object (a copy where links fail)."""
        source = os.path.join(self._objects, sha256[:2], sha256[2:])
        try:
            os.link(source, dest)
        except OSError as exc:
            if exc.errno not in NO_LINK:
                raise
            shutil.copyfile(source, dest)
            os.chmod(dest, READ_ONLY)

    def all_objects(self) -> list[str]:
        root = self.layout.objects
        if not root.exists():
            return []
        return [
            prefix.name + entry.name
            for prefix in root.iterdir()
            if prefix.is_dir()
            for entry in prefix.iterdir()
        ]

    def remove(self, sha256: str) -> int:
        path = self.layout.object_path(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size
