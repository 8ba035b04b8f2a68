"""An exclusive OS file lock (``flock``), the one lock primitive the cache and the backends
share.

The kernel releases an ``flock`` when its process dies, so a crash never leaves a stale lock,
and two opens of one file exclude each other in one process too (threads). This is what
``filelock`` does on POSIX, written out because importing ``filelock`` cost every ``dagfetch``
command tens of milliseconds of start-up; where ``fcntl`` is missing (Windows), ``filelock``
is used, imported then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 0.05

__all__ = ["LockTimeout", "exclusive_lock"]


class LockTimeout(TimeoutError):
    """The lock was still held by someone else when the timeout ran out."""


@contextmanager
def exclusive_lock(path: str | Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block; wait
    up to ``timeout`` seconds (a negative timeout waits forever), else raise
    :class:`LockTimeout`."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        with _filelock(path, timeout):
            yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout >= 0 and deadline <= time.monotonic():
                    raise LockTimeout(f"timed out waiting for the lock {path}") from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _filelock(path: str | Path, timeout: float) -> Iterator[None]:  # pragma: no cover
    import filelock

    try:
        with filelock.FileLock(str(path), timeout=timeout):
            yield
    except filelock.Timeout:
        raise LockTimeout(f"timed out waiting for the lock {path}") from None
