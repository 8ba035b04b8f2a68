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

_CHUNK = 1 << 20
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def git_blob_hasher(size: int) -> hashlib._Hash:
    """A sha1 primed with git's blob header: fed the ``size`` bytes, it gives the blob id."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {size}\0".encode())
    return h


def hash_file(path: Path, expect_digest: str | None = None) -> tuple[str, int]:
    """Return (sha256, size) of ``path``; check ``expect_digest`` (``algo:hex``) on the way."""
    sha = hashlib.sha256()
    check: hashlib._Hash | None = None
    algo = want = None
    # plain descriptors: verifying a version calls this once per downloaded file
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        if expect_digest:
            algo, _, want = expect_digest.partition(":")
            if algo == "git-blob":
                check = git_blob_hasher(os.fstat(fd).st_size)
            elif algo in ("md5", "sha1", "sha256"):
                check = hashlib.new(algo, usedforsecurity=False)
        size = 0
        while chunk := os.read(fd, _CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if check is not None:
                check.update(chunk)
    finally:
        os.close(fd)
    if check is not None and check.hexdigest() != (want or "").lower():
        raise VerificationError(f"{path.name}: {algo} is {check.hexdigest()}, expected {want}")
    return sha.hexdigest(), size


@attrs.frozen
class ObjectStore:
    layout: CacheLayout
    _objects: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_objects", str(self.layout.objects))

    def has(self, sha256: str, size: int | None = None) -> bool:
        """Whether the store holds the object (of ``size`` bytes, when given: a truncated or
        grown object is not reused, so damage does not spread into the next version)."""
        # plain strings: a sync asks this once per file of the version
        try:
            st = os.stat(os.path.join(self._objects, sha256[:2], sha256[2:]))
        except OSError:
            return False
        return size is None or st.st_size == size

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

    def link_into(self, sha256: str, dest: str | Path) -> None:
        """Make ``dest`` a read-only hard link to the object (a copy where links fail)."""
        source = os.path.join(self._objects, sha256[:2], sha256[2:])
        try:
            os.link(source, dest)
        except OSError as exc:
            if exc.errno not in _NO_LINK:
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
