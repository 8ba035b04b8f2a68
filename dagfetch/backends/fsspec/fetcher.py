"""``FsspecFetcher``: list and download through one fsspec file system.

What differs per store (how it is listed, change tokens, versioned paths, download
arguments) is read from the store's row of :mod:`dagfetch.storage.families`; this module
never tests a protocol name.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import fsspec

from dagfetch.backends.fsspec.downloads import (
    RetryPolicy,
    download_async,
    download_threads,
    http_status,
    problem,
)
from dagfetch.backends.fsspec.http_index import file_url, list_http
from dagfetch.backends.fsspec.options import FsspecOptions
from dagfetch.errors import ConfigError, FetchError, RemoteNotFoundError
from dagfetch.models import Listing, RemoteFile
from dagfetch.options import parse_options
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.redact import get_logger, redact_url
from dagfetch.storage import VERSION_KEY, open_filesystem, url_protocols

log = get_logger(__name__)

T = TypeVar("T")


class _Overran(Exception):
    """A listing or download batch ran past the ``timeout`` option."""


def _looks_like_git_remote(url: str) -> bool:
    """A URL whose path ends in ``.git`` (``https://host/org/repo.git``): what git remotes
    look like, and no web server's folder of DAG files does."""
    path = urlsplit(url).path.rstrip("/")
    return path.endswith(".git")


class FsspecFetcher(BaseFetcher):
    """Fetch from any fsspec URL. Manifest ``options``: see :class:`FsspecOptions`
    (``concurrency``, ``retries``, ``timeout``, ``version_aware``, ``storage_options``);
    any other key is refused before anything is fetched."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.options = parse_options(FsspecOptions, source.options, field=f"{source.field}.options")
        self.concurrency = self.options.concurrency
        self.retries = self.options.retries
        self.retry = RetryPolicy(self.options.retries)
        store = open_filesystem(
            source.url,
            source.connection,
            self.options.storage_options,
            version_aware=self.options.version_aware,
        )
        self.fs = store.fs
        self.protocol = store.protocol
        self.family = store.family
        if self.family.paths_are_urls and _looks_like_git_remote(source.url):
            raise ConfigError(
                f"{redact_url(source.url)} looks like a git remote, not a folder of files "
                f"served over HTTP; write it as git+{redact_url(source.url)} for the git "
                "backend"
            )
        if len(url_protocols(source.url)) > 1 and self.family.listing != "find":
            # the wrapper (a cache) serves file paths; index pages and blob listings are
            # read from the store itself, which a chain hides
            raise ConfigError(
                f"{redact_url(source.url)}: a chained URL can wrap a store listed by path "
                f"(s3, gs, file, ...), not {self.protocol}://; write the URL without the chain"
            )
        self.version_aware = self.options.version_aware and self.family.versioned
        self.is_async = bool(getattr(self.fs, "async_impl", False))
        if self.family.paths_are_urls:
            root = source.url.split("?", 1)[0].split("#", 1)[0]
            if source.subdir:
                root = root.rstrip("/") + "/" + source.subdir
            self.root = root.rstrip("/") + "/"
        else:
            root = store.path
            if source.subdir:
                root = posixpath.join(root, source.subdir)
            self.root = root.rstrip("/") or "/"
        self.capabilities = Capabilities(
            incremental=True,
            versioned=self.version_aware,
            concurrent=self.is_async or self.concurrency > 1,
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _run(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        """Run a coroutine on the file system's loop, cancelled after ``timeout`` seconds."""
        timeout = self.options.timeout

        async def bounded() -> T:
            task = asyncio.ensure_future(make())
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise _Overran
            return task.result()

        try:
            return fsspec.asyn.sync(self.fs.loop, bounded)  # type: ignore[no-any-return]
        except _Overran:
            raise FetchError(
                f"{self._where()}: {what} did not finish within the timeout of {timeout:g} s"
            ) from None

    def _where(self, path: str | None = None) -> str:
        url = redact_url(self.source.url)
        return f"{url} ({path})" if path else url

    # -- listing -----------------------------------------------------------------------------

    def list(self) -> Listing:
        started = time.monotonic()
        try:
            if self.family.listing == "index":
                found = self._run(self._list_index, "the listing")
            else:
                found = self._list_fs()
        except (FetchError, RemoteNotFoundError):
            raise
        except FileNotFoundError:
            raise RemoteNotFoundError(f"{self._where()}: not found") from None
        except Exception as exc:
            raise FetchError(f"{self._where()}: listing failed: {problem(exc)}") from None
        files = [f for f in (self._remote_file(n, i) for n, i in found.items()) if f is not None]
        if self.version_aware and any(
            f.kind == "file" and VERSION_KEY not in f.extra for f in files
        ):
            log.warning(
                "%s: version_aware is set but the store reports no object versions "
                "(versioning off?); evicted versions cannot be fetched again",
                self.source.repo_id,
            )
            self.capabilities = attrs.evolve(self.capabilities, versioned=False)
        log.debug(
            "%s: listed %d files in %.2f s",
            self.source.repo_id,
            len(files),
            time.monotonic() - started,
        )
        return Listing.of(files)

    def _list_fs(self) -> dict[str, dict[str, Any]]:
        # a cached listing would hide changes: always ask the store
        self.fs.invalidate_cache()
        if self.family.listing == "blobs" and self.is_async:
            listed = self._run(lambda: self.retry.run(self._list_blobs), "the listing")
            if not listed and not self.retry.call(self.fs.exists, self.root):
                raise RemoteNotFoundError(f"{self._where()}: not found")
            return listed
        if self.is_async:
            found: dict[str, dict[str, Any]] = self._run(
                lambda: self.retry.run(
                    lambda: self.fs._find(self.root, withdirs=False, detail=True)
                ),
                "the listing",
            )
        else:
            found = self.retry.call(self.fs.find, self.root, withdirs=False, detail=True)
        if not found and not self.retry.call(self.fs.exists, self.root):
            raise RemoteNotFoundError(f"{self._where()}: not found")
        return {self._relpath(name): info for name, info in found.items()}

    async def _list_index(self) -> dict[str, dict[str, Any]]:
        return await list_http(
            self.fs,
            self.root,
            work_dir=self.source.work_dir,
            retry=self.retry,
            concurrency=self.concurrency,
        )

    async def _list_blobs(self) -> dict[str, dict[str, Any]]:
        """List Azure blobs directly: adlfs's ``find`` first asks for the root's properties
        (one more request per check) and does not list object versions."""
        container, prefix, _ = self.fs.split_path(self.root.rstrip("/") + "/")
        include = ["metadata", "versions"] if self.version_aware else ["metadata"]
        found: dict[str, dict[str, Any]] = {}
        async with self.fs.service_client.get_container_client(container) as client:
            async for blob in client.list_blobs(name_starts_with=prefix, include=include):
                if blob.get("is_current_version") is False:
                    continue  # an older version; the listing describes the present
                if (blob.get("metadata") or {}).get("is_directory") == "true":
                    continue
                settings = blob.get("content_settings")
                found[blob["name"][len(prefix) :]] = {
                    "type": "file",
                    "size": blob.get("size"),
                    "etag": blob.get("etag"),
                    "version_id": blob.get("version_id"),
                    "content_settings": {"content_md5": getattr(settings, "content_md5", None)},
                }
        return found

    def _relpath(self, name: str) -> str:
        name = self.fs._strip_protocol(name)
        root = self.root.rstrip("/")
        if root and name.startswith(root + "/"):
            return str(name[len(root) + 1 :])
        if root in ("", "/"):
            return str(name.lstrip("/"))
        return posixpath.relpath(name, root)

    def _remote_file(self, rel: str, info: dict[str, Any]) -> RemoteFile | None:
        if info.get("islink"):
            target = os.readlink(posixpath.join(self.root, rel))
            return RemoteFile(rel, 0, f"link:{target}", kind="symlink", target=target)
        if info.get("type") not in (None, "file"):
            return None
        if rel.endswith("/"):
            return None  # a folder marker object ("dags/") some tools create
        described = self.family.describe(info, self.version_aware)
        size = info.get("size")
        extra = {VERSION_KEY: described.version} if described.version else {}
        return RemoteFile(
            rel, -1 if size is None else int(size), described.token, described.digest, extra=extra
        )

    # -- downloading -------------------------------------------------------------------------

    def _remote_path(self, remote_file: RemoteFile) -> str:
        if self.family.paths_are_urls:
            return file_url(self.root, remote_file.path)
        path = posixpath.join(self.root, remote_file.path)
        version = remote_file.extra.get(VERSION_KEY)
        if self.version_aware and version:
            return self.family.versioned_path(path, version)
        return path

    def _failed(self, remote_file: RemoteFile, exc: BaseException) -> FetchError:
        if isinstance(exc, FetchError):
            return exc
        if isinstance(exc, FileNotFoundError) or http_status(exc) == 404:
            return RemoteNotFoundError(f"{self._where(remote_file.path)}: vanished during the sync")
        return FetchError(f"{self._where(remote_file.path)}: download failed: {problem(exc)}")

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        jobs = [(f, self._remote_path(f), dest / f.path) for f in files]
        for _, _, local in jobs:
            local.parent.mkdir(parents=True, exist_ok=True)
        if not jobs:
            return
        if self.is_async:
            download_kwargs = dict(self.family.download_kwargs)

            def get(remote: str, local: str) -> Awaitable[Any]:
                return self.fs._get_file(remote, local, **download_kwargs)  # type: ignore[no-any-return]

            self._run(
                lambda: download_async(
                    jobs,
                    get,
                    concurrency=self.concurrency,
                    retry=self.retry,
                    failed=self._failed,
                    on_file_done=on_file_done,
                ),
                "the download",
            )
        else:
            download_threads(
                jobs,
                self.fs.get_file,
                concurrency=self.concurrency,
                timeout=self.options.timeout,
                retry=self.retry,
                failed=self._failed,
                on_file_done=on_file_done,
                where=self._where(),
            )
