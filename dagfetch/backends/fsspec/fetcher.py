"""``FsspecFetcher``: list and download through one fsspec file system.

What differs per store (how it is listed, change tokens, versioned paths, download
arguments) is read from the store's row of :mod:`dagfetch.storage.families`; this module
never tests a protocol name.
"""

from __future__ import annotations

import asyncio
import functools
import os
import posixpath
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import fsspec
from fsspec.implementations.local import LocalFileSystem

from dagfetch.backends.fsspec.downloads import (
    Job,
    RetryPolicy,
    download_async,
    download_threads,
    http_status,
    problem,
)
from dagfetch.backends.fsspec.markers import folders_of, is_folder_marker
from dagfetch.backends.fsspec.options import FsspecOptions
from dagfetch.backends.fsspec.reads import (
    PREPARE,
    READERS,
    Sink,
    read_by_get_file,
    read_chained,
    read_local,
    read_memory,
)
from dagfetch.errors import (
    ConfigError,
    DagfetchError,
    FetchError,
    ManifestError,
    RemoteNotFoundError,
)
from dagfetch.limits import ByteBudget
from dagfetch.models import Listing, RemoteFile
from dagfetch.options import parse_options
from dagfetch.paths import safe_relpath
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source, Written
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
        self.limits = source.limits
        self._deadline: float | None = None  # set by list(): the sync_timeout runs from there
        store = open_filesystem(
            source.url,
            source.connection,
            self.options.storage_options,
            version_aware=self.options.version_aware,
            timeouts=(self.limits.connect_timeout, self.limits.read_timeout),
            connections=self.concurrency,
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
        # a local file is copied through one descriptor opened without following links
        self.is_local = isinstance(self.fs, LocalFileSystem)
        # a chain (simplecache::s3://...) wraps the store: store-specific reads need the store
        self.chained = len(url_protocols(source.url)) > 1
        if self.family.container and not urlsplit(source.url.split("::")[-1]).netloc:
            raise ManifestError(
                f"{source.field}.url",
                f"{redact_url(source.url)} names no {self.family.container}: write "
                f"{self.protocol}://<{self.family.container}>/<prefix>",
            )
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

    def _timeout(self) -> tuple[float | None, str]:
        """Seconds the next listing or download batch may take, and what sets them: the
        ``timeout`` option, or what is left of ``limits.sync_timeout``."""
        timeout, why = self.options.timeout, "the timeout"
        if self._deadline is not None:
            left = max(self._deadline - time.monotonic(), 0.001)
            if timeout is None or left < timeout:
                timeout = left
                why = (f"limits.sync_timeout = {self.limits.sync_timeout:g} s "
                       f"({self.source.field}.limits.sync_timeout)")
        return timeout, why

    def _run(self, make: Callable[[], Awaitable[T]], what: str) -> T:
        """Run a coroutine on the file system's loop, cancelled after ``timeout`` seconds."""
        timeout, why = self._timeout()

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
                f"{self._where()}: {what} did not finish within {why} of {timeout:g} s"
                if why == "the timeout" else f"{self._where()}: {what} did not finish within "
                f"{why}"
            ) from None

    async def _prepare(self) -> None:
        """What the store's family does to a file system before using it (s3fs: faster
        timestamps); nothing for a chained URL, whose outer file system is another."""
        prepare = None if self.chained else PREPARE.get(self.family.name)
        if prepare is not None:
            await prepare(self.fs)

    def _where(self, path: str | None = None) -> str:
        url = redact_url(self.source.url)
        return f"{url} ({path})" if path else url

    # -- listing -----------------------------------------------------------------------------

    def list(self) -> Listing:
        started = time.monotonic()
        self._deadline = started + self.limits.sync_timeout
        try:
            if self.family.listing == "index":
                found = self._run(self._list_index, "the listing")
            else:
                found = self._list_fs()
        except DagfetchError:
            raise
        except FileNotFoundError:
            raise RemoteNotFoundError(f"{self._where()}: not found") from None
        except Exception as exc:
            raise FetchError(f"{self._where()}: listing failed: {problem(exc)}") from None
        folders = folders_of(found)
        files = [
            f for f in (self._remote_file(n, i, folders) for n, i in found.items()) if f is not None
        ]
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

            async def find() -> dict[str, dict[str, Any]]:
                await self._prepare()
                found: dict[str, dict[str, Any]] = await self.fs._find(
                    self.root, withdirs=False, detail=True
                )
                return found

            found = self._run(lambda: self.retry.run(find), "the listing")
        else:
            found = self.retry.call(self.fs.find, self.root, withdirs=False, detail=True)
        if not found and not self.retry.call(self.fs.exists, self.root):
            raise RemoteNotFoundError(f"{self._where()}: not found")
        return {self._relpath(name): {**info, "listed_name": name} for name, info in found.items()}

    async def _list_index(self) -> dict[str, dict[str, Any]]:
        from dagfetch.backends.fsspec.http_index import list_http  # html.parser: http only

        return await list_http(
            self.fs,
            self.root,
            work_dir=self.source.work_dir,
            retry=self.retry,
            concurrency=self.concurrency,
            max_folders=self.limits.max_http_folders,
            max_depth=self.limits.max_path_depth,
            max_page_bytes=self.limits.max_file_bytes,
            field=f"{self.source.field}.limits",
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

    def _remote_file(
        self, rel: str, info: dict[str, Any], folders: set[str]
    ) -> RemoteFile | None:
        if info.get("islink"):
            target = os.readlink(posixpath.join(self.root, rel))
            return RemoteFile(rel, 0, f"link:{target}", kind="symlink", target=target)
        if info.get("type") not in (None, "file"):
            return None
        if is_folder_marker(rel, info, folders):
            return None
        described = self.family.describe(info, self.version_aware)
        size = info.get("size")
        extra = {VERSION_KEY: described.version} if described.version else {}
        if safe_relpath(rel) != rel:
            # a key such as a//b.py or ./y.py: the file lands at the clean path, and is
            # downloaded by the key the store has
            extra["key"] = rel
        return RemoteFile(
            rel, -1 if size is None else int(size), described.token, described.digest, extra=extra
        )

    # -- downloading -------------------------------------------------------------------------

    def _remote_path(self, remote_file: RemoteFile) -> str:
        key = remote_file.extra.get("key", remote_file.path)
        if self.family.paths_are_urls:
            from dagfetch.backends.fsspec.http_index import file_url

            return file_url(self.root, key)
        path = self.root.rstrip("/") + "/" + key if self.root != "/" else "/" + key
        version = remote_file.extra.get(VERSION_KEY)
        if self.version_aware and version:
            return self.family.versioned_path(path, version)
        return path

    def _failed(self, remote_file: RemoteFile, exc: BaseException) -> FetchError:
        if isinstance(exc, FetchError):
            return exc
        if isinstance(exc, DagfetchError):
            return FetchError(f"{self._where(remote_file.path)}: {exc}")
        if isinstance(exc, FileNotFoundError) or http_status(exc) == 404:
            return RemoteNotFoundError(f"{self._where(remote_file.path)}: vanished during the sync")
        return FetchError(f"{self._where(remote_file.path)}: download failed: {problem(exc)}")

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> Written:
        """Download ``files`` into ``dest``; returns the sha256 of each file whose bytes all
        went through its :class:`Sink` and whose listing gives no digest (a digest is
        checked by the cache reading the file back), so the cache does not hash it again."""
        jobs = [(f, self._remote_path(f), dest / f.path) for f in files]
        folders = {os.path.dirname(local) for _, _, local in jobs}  # one mkdir per folder
        for folder in sorted(folders):
            os.makedirs(folder, exist_ok=True)
        written: dict[str, str] = {}
        if not jobs:
            return written
        budget = ByteBudget(self.limits, repo_field=self.source.field)
        reader = (None if self.chained else READERS.get(self.family.name)) or functools.partial(
            read_by_get_file, get_kwargs={} if self.chained else self.family.download_kwargs
        )

        def sink_for(job: Job) -> Sink:
            remote_file, _, local = job
            return Sink(local, budget.file(remote_file.path, remote_file.size))

        def done(remote_file: RemoteFile, sink: Sink) -> None:
            sha = None if remote_file.digest else sink.sha256()
            if sha is not None:
                written[remote_file.path] = sha

        if self.is_async:

            async def get(job: Job) -> None:
                sink = sink_for(job)
                try:
                    await reader(self.fs, job[1], job[0], sink)
                except BaseException:
                    sink.budget.refund()  # a retry starts this file again
                    raise
                finally:
                    sink.close()
                done(job[0], sink)

            async def download() -> None:
                await self._prepare()
                await download_async(
                    jobs,
                    get,
                    concurrency=self.concurrency,
                    retry=self.retry,
                    failed=self._failed,
                    on_file_done=on_file_done,
                )

            self._run(download, "the download")
            return written

        def copy(job: Job) -> None:
            sink = sink_for(job)
            try:
                if self.chained:
                    read_chained(self.fs, job[1], job[0], sink)
                elif self.is_local:
                    read_local(self.root, job[0], sink)
                else:
                    read_memory(self.fs, job[1], job[0], sink)
            except BaseException:
                sink.budget.refund()
                raise
            finally:
                sink.close()
            done(job[0], sink)

        timeout, _ = self._timeout()
        download_threads(
            jobs,
            copy,
            concurrency=self.concurrency,
            timeout=timeout,
            retry=self.retry,
            failed=self._failed,
            on_file_done=on_file_done,
            where=self._where(),
        )
        return written

