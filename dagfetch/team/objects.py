"""The team cache's objects, through fsspec: whole GETs, ranged GETs, atomic PUTs, listings.

Every call here is one request to the store (a listing may page), so the follower's request
budget can be read off the code that calls it. Errors of the lower library become
:class:`~dagfetch.errors.FetchError` naming the redacted URL of the object, masked.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import attrs

from dagfetch.errors import DagfetchError, FetchError, RemoteNotFoundError
from dagfetch.redact import mask, redact_url
from dagfetch.storage import OpenedStore


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
            if name and not name.startswith(".tmp-"):
                found.append((name, dict(info)))
        return found

    def delete(self, key: str) -> None:
        with self._errors(key, "delete"), suppress(FileNotFoundError):
            self.store.fs.rm_file(self._path(key))
