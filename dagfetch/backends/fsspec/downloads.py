"""Downloads and the retry policy of the fsspec backend.

Every request (a listing page, a HEAD, a download) goes through :class:`RetryPolicy`:
retried with exponential backoff on throttling, 5xx, timeouts and broken connections, never
on a missing object or a refusal. Downloads run through a fixed set of workers pulling from
one iterator, so memory stays bounded by the concurrency, not by the number of files (a task
or a future per file cost ~2 KB each: 200 MB for 100,000 files). The first file that fails
for good stops the others and fails the fetch.
"""

from __future__ import annotations

import asyncio
import errno
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any, TypeVar

from dagfetch.errors import FetchError, RemoteNotFoundError
from dagfetch.models import RemoteFile
from dagfetch.protocol import FileDone
from dagfetch.redact import mask

T = TypeVar("T")
Job = tuple[RemoteFile, str, Path]  # what to download, from where, to where
Failed = Callable[[RemoteFile, BaseException], FetchError]

_DENIED = (401, 403)


def http_status(exc: BaseException) -> int | None:
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


def connection_refused(exc: BaseException) -> bool:
    """Nothing listens there (ECONNREFUSED), however deep a library wrapped it: retrying
    with backoff only made the user wait 9-15 s for the same answer."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cyclic one
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == \
                errno.ECONNREFUSED:
            return True
        os_error = getattr(seen, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, ConnectionRefusedError):
            return True
        if "Connection refused" in str(seen) or "ECONNREFUSED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """Worth another try: throttling, 5xx, timeouts and broken connections (not a refused
    one: nothing listens, and backing off will not change that)."""
    if connection_refused(exc):
        return False
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
    status = http_status(exc)
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


def problem(exc: BaseException) -> str:
    """A lower library's error in a user's words, masked."""
    status = http_status(exc)
    if status in _DENIED or isinstance(exc, PermissionError):
        return f"access denied (HTTP {status or 403}); check the credentials of its conn_id"
    text = mask(str(exc)) or type(exc).__name__
    return text if status is None or str(status) in text else f"HTTP {status}: {text}"


class RetryPolicy:
    """Up to ``retries`` retries per request after its first attempt (0: never retried, as
    botocore, urllib3 and tenacity users read it), with exponential backoff and jitter, on
    :func:`is_transient` errors only; the last error is raised as it was.

    A loop of its own rather than tenacity's: every listing goes through it, and importing
    tenacity was a tenth of a no-change ``dagfetch sync`` process beyond the interpreter."""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.attempts = retries + 1

    def _again(self, attempt: int, exc: Exception) -> float | None:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (from 1):
        0.2 s doubling up to 5 s, plus up to 0.2 s of jitter; None: raise ``exc``."""
        if attempt >= self.attempts or not is_transient(exc):
            return None
        return min(0.2 * 2.0 ** (attempt - 1), 5.0) + random.uniform(0, 0.2)  # noqa: S311

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        attempt = 1
        while True:
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                pause = self._again(attempt, exc)
                if pause is None:
                    raise
            time.sleep(pause)
            attempt += 1

    async def run(self, make: Callable[[], Awaitable[T]]) -> T:
        attempt = 1
        while True:
            try:
                return await make()
            except Exception as exc:
                pause = self._again(attempt, exc)
                if pause is None:
                    raise
            await asyncio.sleep(pause)
            attempt += 1


async def download_async(
    jobs: Sequence[Job],
    get: Callable[[Job], Awaitable[Any]],
    *,
    concurrency: int,
    retry: RetryPolicy,
    failed: Failed,
    on_file_done: FileDone | None,
) -> None:
    """Run ``get(job)`` for every job on the current event loop, ``concurrency`` at once;
    the first failure cancels the rest and is raised as ``failed`` makes it."""

    async def one(job: Job) -> None:
        remote_file = job[0]
        try:
            await retry.run(lambda: get(job))
        except Exception as exc:
            raise failed(remote_file, exc) from None
        if on_file_done is not None:
            on_file_done(remote_file)

    pending = iter(jobs)

    async def worker() -> None:
        for job in pending:
            await one(job)

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(jobs)))]
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


def download_threads(
    jobs: Sequence[Job],
    get: Callable[[Job], Any],
    *,
    concurrency: int,
    timeout: float | None,
    retry: RetryPolicy,
    failed: Failed,
    on_file_done: FileDone | None,
    where: str,
) -> None:
    """The same for file systems without an event loop (file://, memory://), through a
    bounded thread pool; a batch running past ``timeout`` fails naming ``where``."""

    def one(job: Job) -> None:
        remote_file = job[0]
        try:
            retry.call(get, job)
        except Exception as exc:
            raise failed(remote_file, exc) from None
        if on_file_done is not None:
            on_file_done(remote_file)

    if concurrency <= 1 or len(jobs) <= 1:
        for job in jobs:
            one(job)
        return
    pending: Iterator[Job] = iter(jobs)
    lock = threading.Lock()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                job = next(pending, None)
            if job is None:
                return
            one(job)

    workers = min(concurrency, len(jobs))
    pool = ThreadPoolExecutor(max_workers=workers)
    overran = False
    try:
        futures = [pool.submit(worker) for _ in range(workers)]
        done, not_done = futures_wait(futures, timeout=timeout, return_when=FIRST_EXCEPTION)
        for future in done:
            failure = future.exception()
            if failure is not None:
                raise failure
        if not_done:
            overran = True
            raise FetchError(
                f"{where}: the download did not finish within the timeout of {timeout:g} s"
            )
    finally:
        stop.set()
        # after a failure or a timeout, start nothing more; do not wait for a stuck copy
        pool.shutdown(wait=not overran, cancel_futures=True)
