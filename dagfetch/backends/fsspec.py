"""The generic backend: any fsspec file system (file://, memory://, s3://, gs://, az://, http://).

A check is one listing: ``find`` with details on object stores (one request per page of
keys), the index pages on HTTP (see :mod:`dagfetch.backends.fsspec_http`); never a HEAD or
GET per object. Change tokens come from :mod:`dagfetch.backends.fsspec_tokens`, connection
settings from :mod:`dagfetch.backends.fsspec_options`.

Downloads on async file systems (s3fs, gcsfs, adlfs, HTTP) run as tasks on fsspec's event
loop, at most ``concurrency`` at once, each retried with exponential backoff on throttling,
5xx and connection errors; a listing or a download batch that overruns ``timeout`` is
cancelled. The first file that fails for good cancels the rest and fails the fetch. Other file
systems (file://, memory://) download through a bounded thread pool with the same retries.

With ``version_aware = true`` on S3, GCS or Azure, each listed object's version is kept in
``RemoteFile.extra`` and downloads ask for exactly that version, so a version evicted from
the cache can be fetched again (``Capabilities.versioned``).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any, TypeVar

import attrs
import fsspec
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from dagfetch.backends import fsspec_http
from dagfetch.backends.fsspec_options import (
    AZURE,
    HTTP,
    VERSIONED_STORES,
    split_options,
    storage_options,
    versioned_path,
)
from dagfetch.backends.fsspec_tokens import VERSION_KEY, describe
from dagfetch.errors import BackendNotInstalled, FetchError, RemoteNotFoundError
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.redact import get_logger, mask, redact_url
from dagfetch.registry import INSTALL_HINTS

log = get_logger(__name__)

T = TypeVar("T")
Job = tuple[RemoteFile, str, Path]  # what to download, from where, to where

_DENIED = (401, 403)


class _Overran(Exception):
    """A listing or download batch ran past the ``timeout`` option."""


def _status(exc: BaseException) -> int | None:
    """The HTTP status a lower library's error carries, whatever it calls it."""
    for name in ("status", "status_code", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def _transient(exc: BaseException) -> bool:
    """Worth another try: throttling, 5xx, timeouts and broken connections."""
    if isinstance(
        exc,
        (
            FileNotFoundError,
            PermissionError,
            IsADirectoryError,
            NotADirectoryError,
            RemoteNotFoundError,
        ),
    ):
        return False
    status = _status(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    text = repr(exc)
    if any(word in text for word in ("Throttl", "SlowDown", "TooManyRequests")):
        return True
    if isinstance(exc, FetchError):
        return False
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError)):
        return True
    # aiohttp's and azure-core's connection errors are not all OSErrors
    return type(exc).__name__ in (
        "ClientConnectionError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "ServiceRequestError",
        "ServiceResponseError",
    )


def _problem(exc: BaseException) -> str:
    status = _status(exc)
    if status in _DENIED or isinstance(exc, PermissionError):
        return f"access denied (HTTP {status or 403}); check the credentials of its conn_id"
    text = mask(str(exc)) or type(exc).__name__
    return text if status is None or str(status) in text else f"HTTP {status}: {text}"


class FsspecFetcher(BaseFetcher):
    """Fetch from any fsspec URL. Manifest ``options``: ``concurrency``, ``retries``,
    ``timeout``, ``version_aware`` (see :class:`FetchOptions`); anything else is passed to the
    file system as a storage option."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        protocol, _, rest = source.url.partition("://")
        self.protocol = protocol.lower() if rest else "file"
        self.options, extra_options = split_options(source.repo_id, source.options)
        self.concurrency = self.options.concurrency
        self.retries = self.options.retries
        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except (ImportError, ValueError) as exc:
            hint = INSTALL_HINTS.get(self.protocol, "install the fsspec implementation for it")
            raise BackendNotInstalled(self.protocol, mask(f"{exc}; {hint}")) from exc
        self.version_aware = self.options.version_aware and self.protocol in VERSIONED_STORES
        kwargs = {**storage_options(self.protocol, source.connection), **extra_options}
        if self.version_aware:
            kwargs["version_aware"] = True
        try:
            self.fs = cls(**kwargs)
        except Exception as exc:
            raise FetchError(
                f"{redact_url(source.url)}: cannot open the file system: {mask(str(exc))}"
            ) from None
        self.is_async = bool(getattr(self.fs, "async_impl", False))
        if self.protocol in HTTP:
            root = source.url.split("?", 1)[0].split("#", 1)[0]
            if source.subdir:
                root = root.rstrip("/") + "/" + source.subdir
            self.root = root.rstrip("/") + "/"
        else:
            root = cls._strip_protocol(source.url)
            if source.subdir:
                root = posixpath.join(root, source.subdir)
            self.root = root.rstrip("/") or "/"
        self.capabilities = Capabilities(
            incremental=True,
            versioned=self.version_aware,
            concurrent=self.is_async or self.concurrency > 1,
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _policy(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.retries),
            "wait": wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
            "retry": retry_if_exception(_transient),
            "reraise": True,
        }

    def _retrying(self) -> Retrying:
        return Retrying(**self._policy())

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        async for attempt in AsyncRetrying(**self._policy()):
            with attempt:
                return await call()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

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
            if self.protocol in HTTP:
                found = self._run(self._list_http, "the listing")
            else:
                found = self._list_fs()
        except (FetchError, RemoteNotFoundError):
            raise
        except FileNotFoundError:
            raise RemoteNotFoundError(f"{self._where()}: not found") from None
        except Exception as exc:
            raise FetchError(f"{self._where()}: listing failed: {_problem(exc)}") from None
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
        if self.protocol in AZURE and self.is_async:
            listed = self._run(lambda: self._retry(self._list_azure), "the listing")
            if not listed and not self._retrying()(self.fs.exists, self.root):
                raise RemoteNotFoundError(f"{self._where()}: not found")
            return listed
        if self.is_async:
            found: dict[str, dict[str, Any]] = self._run(
                lambda: self._retry(lambda: self.fs._find(self.root, withdirs=False, detail=True)),
                "the listing",
            )
        else:
            found = self._retrying()(self.fs.find, self.root, withdirs=False, detail=True)
        if not found and not self._retrying()(self.fs.exists, self.root):
            raise RemoteNotFoundError(f"{self._where()}: not found")
        return {self._relpath(name): info for name, info in found.items()}

    async def _list_http(self) -> dict[str, dict[str, Any]]:
        session = await self.fs.set_session()
        request_kwargs = dict(self.fs.kwargs)
        work = self.source.work_dir
        pages = fsspec_http.IndexCache(work / "http-index.json" if work is not None else None)

        async def request(method: str, url: str) -> tuple[int, dict[str, str], str]:
            async def once() -> tuple[int, dict[str, str], str]:
                kwargs = dict(request_kwargs)
                if method == "GET":
                    conditional = pages.conditional_headers(url)
                    kwargs["headers"] = {**kwargs.get("headers", {}), **conditional}
                async with session.request(method, url, **kwargs) as response:
                    if method == "GET" and response.status == 304:
                        cached = pages.not_modified(url)
                        if cached is not None:
                            return 200, dict(response.headers), cached
                    body = await response.text() if method == "GET" else ""
                    if response.status in (408, 429) or response.status >= 500:
                        raise fsspec_http.HttpStatusError(response.status, url)
                    if method == "GET" and response.status == 200:
                        pages.remember(url, dict(response.headers), body)
                    return response.status, dict(response.headers), body

            return await self._retry(once)

        found = await fsspec_http.list_index(self.root, request, concurrency=self.concurrency)
        pages.save()
        return found

    async def _list_azure(self) -> dict[str, dict[str, Any]]:
        """List blobs directly: adlfs's ``find`` first asks for the root's properties (one
        more request per check) and does not list object versions."""
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
        described = describe(self.protocol, info, version_aware=self.version_aware)
        size = info.get("size")
        extra = {VERSION_KEY: described.version} if described.version else {}
        return RemoteFile(
            rel, -1 if size is None else int(size), described.token, described.digest, extra=extra
        )

    # -- downloading -------------------------------------------------------------------------

    def _remote_path(self, remote_file: RemoteFile) -> str:
        if self.protocol in HTTP:
            return fsspec_http.file_url(self.root, remote_file.path)
        path = posixpath.join(self.root, remote_file.path)
        version = remote_file.extra.get(VERSION_KEY)
        if self.version_aware and version:
            return versioned_path(self.protocol, path, version)
        return path

    def _failed(self, remote_file: RemoteFile, exc: BaseException) -> FetchError:
        if isinstance(exc, FetchError):
            return exc
        if isinstance(exc, FileNotFoundError) or _status(exc) == 404:
            return RemoteNotFoundError(f"{self._where(remote_file.path)}: vanished during the sync")
        return FetchError(f"{self._where(remote_file.path)}: download failed: {_problem(exc)}")

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        jobs = [(f, self._remote_path(f), dest / f.path) for f in files]
        for _, _, local in jobs:
            local.parent.mkdir(parents=True, exist_ok=True)
        if not jobs:
            return
        if self.is_async:
            self._run(lambda: self._fetch_async(jobs, on_file_done), "the download")
        else:
            self._fetch_threads(jobs, on_file_done)

    async def _fetch_async(self, jobs: Sequence[Job], on_file_done: FileDone | None) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        extra_kwargs: dict[str, Any] = {}
        if self.protocol in ("gs", "gcs"):
            extra_kwargs["concurrency"] = 1  # one GET per object, no HEAD to plan chunks

        async def one(job: Job) -> None:
            remote_file, remote, local = job
            async with gate:
                try:
                    await self._retry(lambda: self.fs._get_file(remote, str(local), **extra_kwargs))
                except Exception as exc:
                    raise self._failed(remote_file, exc) from None
            if on_file_done is not None:
                on_file_done(remote_file)

        # a fixed set of workers pulling from one iterator: memory stays bounded by the
        # concurrency, not by the number of files (one task per file cost ~2 KB each)
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:
                await one(job)

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(jobs)))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # the first failure (or a timeout cancelling us) stops every other download
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure

    def _fetch_threads(self, jobs: Sequence[Job], on_file_done: FileDone | None) -> None:
        def one(job: Job) -> None:
            remote_file, remote, local = job
            try:
                self._retrying()(self.fs.get_file, remote, str(local))
            except Exception as exc:
                raise self._failed(remote_file, exc) from None
            if on_file_done is not None:
                on_file_done(remote_file)

        if self.concurrency <= 1 or len(jobs) <= 1:
            for job in jobs:
                one(job)
            return
        # workers pulling from one shared iterator (pool.map would submit a future per file
        # up front: ~2 KB each, 200 MB for 100,000 files)
        pending = iter(jobs)
        lock = threading.Lock()
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                with lock:
                    job = next(pending, None)
                if job is None:
                    return
                one(job)

        workers = min(self.concurrency, len(jobs))
        pool = ThreadPoolExecutor(max_workers=workers)
        overran = False
        try:
            futures = [pool.submit(worker) for _ in range(workers)]
            done, not_done = futures_wait(
                futures, timeout=self.options.timeout, return_when=FIRST_EXCEPTION
            )
            for future in done:
                failure = future.exception()
                if failure is not None:
                    raise failure
            if not_done:
                overran = True
                raise FetchError(
                    f"{self._where()}: the download did not finish within the "
                    f"timeout of {self.options.timeout:g} s"
                )
        finally:
            stop.set()
            # after a failure or a timeout, start nothing more; do not wait for a stuck copy
            pool.shutdown(wait=not overran, cancel_futures=True)
