"""The team cache's objects, through fsspec: whole GETs, ranged GETs, atomic PUTs, listings,
and compare-and-swap PUTs for the pointer.

Every call here is one request to the store (a listing may page; :meth:`TeamObjects.get_tagged`,
a leader's, is two), so the follower's request budget can be read off the code that calls it.
Errors of the lower library become :class:`~dagfetch.errors.FetchError` naming the redacted
URL of the object, masked.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import attrs

from dagfetch.errors import DagfetchError, FetchError, RemoteNotFoundError
from dagfetch.oslock import exclusive_lock
from dagfetch.redact import mask, redact_url
from dagfetch.storage import OpenedStore

#: how long a leader waits for another one's compare-and-swap of a folder's pointer
SWAP_LOCK_TIMEOUT = 60.0
_IN_MEMORY_SWAP = threading.Lock()  # fsspec's memory:// lives in this process only


@attrs.define
class TeamObjects:
    """Keys under the team cache's root, read and written through one opened file system."""

    store: OpenedStore
    url: str  # the team cache URL, for messages (redacted before use)

    @property
    def _local(self) -> bool:
        # a PUT to an object store is atomic; a file is written in place, so it goes to a
        # temporary name and is renamed
        return self.store.family.name == "local"

    def _path(self, key: str) -> str:
        return posixpath.join(self.store.path, key)

    def _where(self, key: str) -> str:
        return f"{redact_url(self.url)}/{key}"

    @contextmanager
    def _errors(self, key: str, doing: str) -> Iterator[None]:
        try:
            yield
        except DagfetchError:
            raise
        except FileNotFoundError:
            raise RemoteNotFoundError(f"team cache: {self._where(key)} does not exist") from None
        except Exception as exc:
            raise FetchError(
                f"team cache: cannot {doing} {self._where(key)}: {mask(str(exc))}"
            ) from None

    def get(self, key: str) -> bytes:
        """A whole object: one GET (asked as the range from 0 to the end, which spares the
        HEAD some file systems send first to plan a chunked download)."""
        with self._errors(key, "read"):
            data: bytes = self.store.fs.cat_file(self._path(key), start=0)
            return data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of an object: one ranged GET."""
        with self._errors(key, "read"):
            data: bytes = self.store.fs.cat_file(self._path(key), start=start, end=end)
        if len(data) != end - start:
            raise FetchError(
                f"team cache: {self._where(key)} is shorter than its index says "
                f"(asked for {end - start} bytes at {start}, got {len(data)})"
            )
        return data

    def put(self, key: str, data: bytes) -> None:
        """Write a whole object so that a reader sees the old one or the new one, never a
        part: one PUT on an object store, a temporary file and a rename on a folder."""
        path = self._path(key)
        with self._errors(key, "write"):
            if not self._local:
                self.store.fs.pipe_file(path, data)
                return
            parent = posixpath.dirname(path)
            self.store.fs.makedirs(parent, exist_ok=True)
            tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}")
            self.store.fs.pipe_file(tmp, data)
            try:
                self.store.fs.mv(tmp, path)
            except BaseException:
                self.store.fs.rm_file(tmp)
                raise

    # -- compare and swap (the pointer) -----------------------------------------------------

    @property
    def compare_and_swap(self) -> bool:
        """Whether :meth:`put_if` is a real compare-and-swap here: on a store with conditional
        writes (S3's ``If-Match``/``If-None-Match``) and on a folder (an OS lock around the
        swap); elsewhere it is a plain PUT and the last writer wins."""
        return self._local or self.store.family.conditional is not None

    def get_tagged(self, key: str) -> tuple[bytes, str | None]:
        """A whole object and the tag :meth:`put_if` compares: its ETag (a HEAD, then the
        GET: an object replaced between the two fails the swap, never passes it), the sha256
        of its bytes on a folder, None where the store has no conditional writes."""
        conditional = self.store.family.conditional
        if conditional is None:
            data = self.get(key)
            return data, (hashlib.sha256(data).hexdigest() if self._local else None)
        path = self._path(key)
        with self._errors(key, "read"):
            self.store.fs.invalidate_cache(path)
            tag = conditional.tag(self.store.fs.info(path))
        return self.get(key), tag

    def put_if(self, key: str, data: bytes, tag: str | None) -> bool:
        """Write ``key`` only if it is still the object :meth:`get_tagged` read (``tag``), or
        (None) only if there is none; False when another writer was first. Atomic as
        :meth:`put`. Without conditional writes: :meth:`put`, True."""
        conditional = self.store.family.conditional
        if self._local:
            return self._swap_file(key, data, tag)
        if conditional is None:
            self.put(key, data)
            return True
        try:
            with self._errors(key, "write"):
                try:
                    self.store.fs.pipe_file(self._path(key), data, **conditional.put_kwargs(tag))
                except Exception as exc:
                    if conditional.refused(exc):
                        return False
                    raise
        finally:
            self.store.fs.invalidate_cache(self._path(key))
        return True

    def _swap_file(self, key: str, data: bytes, tag: str | None) -> bool:
        path = self._path(key)
        parent = posixpath.dirname(path)
        with self._errors(key, "write"):
            self.store.fs.makedirs(parent, exist_ok=True)
            with self._swap_lock(parent, posixpath.basename(path)):
                try:
                    now: str | None = hashlib.sha256(self.store.fs.cat_file(path)).hexdigest()
                except FileNotFoundError:
                    now = None
                if now != tag:
                    return False
                self.put(key, data)
        return True

    def _swap_lock(self, parent: str, name: str) -> AbstractContextManager[Any]:
        from fsspec.implementations.local import LocalFileSystem

        if isinstance(self.store.fs, LocalFileSystem):  # other processes, other machines
            return exclusive_lock(os.path.join(parent, f".lock-{name}"), SWAP_LOCK_TIMEOUT)
        return _IN_MEMORY_SWAP

    def exists(self, key: str) -> bool:
        with self._errors(key, "check"):
            return bool(self.store.fs.exists(self._path(key)))

    def list(self, folder: str) -> list[tuple[str, dict[str, Any]]]:
        """(name, info) of the objects directly under ``folder`` (none if it is missing)."""
        path = self._path(folder)
        with self._errors(folder, "list"):
            try:
                entries = self.store.fs.ls(path, detail=True, refresh=True)
            except FileNotFoundError:
                return []
        found = []
        for info in entries:
            if info.get("type") == "directory":
                continue
            name = posixpath.basename(str(info["name"]).rstrip("/"))
            if name and not name.startswith((".tmp-", ".lock-")):
                found.append((name, dict(info)))
        return found

    def delete(self, key: str) -> None:
        with self._errors(key, "delete"), suppress(FileNotFoundError):
            self.store.fs.rm_file(self._path(key))
