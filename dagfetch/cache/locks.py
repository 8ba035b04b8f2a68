"""The cache's locks: one per repository, one for the object store.

:func:`dagfetch.oslock.exclusive_lock` takes an OS lock, which the kernel releases when a
process dies, so a crash never leaves a stale lock. Syncs, gc, pins and unpins of one
repository take its lock; adding objects and sweeping them take the objects lock, always
*after* a repository lock (one order, so no two processes wait for each other). Readers take
no repository lock: a restore of a stored tree takes only the objects lock, so a reader never
waits for a long sync.

The locks are not reentrant: code that holds one must not take it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import attrs

from dagfetch.cache.layout import CacheLayout
from dagfetch.errors import CacheError
from dagfetch.oslock import LockTimeout, exclusive_lock

DEFAULT_LOCK_TIMEOUT = 600.0


@attrs.define
class CacheLocks:
    layout: CacheLayout
    timeout: float = DEFAULT_LOCK_TIMEOUT

    def repo(self, repo_id: str, timeout: float | None = None) -> AbstractContextManager[None]:
        return self._locked(f"repo-{repo_id}", timeout)

    def objects(self) -> AbstractContextManager[None]:
        return self._locked("objects", None)

    @contextmanager
    def _locked(self, name: str, timeout: float | None) -> Iterator[None]:
        path = self.layout.lock(name)
        held = ExitStack()
        try:
            self.layout.ensure_root()  # every write starts with a lock: the root is made here
            path.parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(exclusive_lock(path, self.timeout if timeout is None else timeout))
        except LockTimeout:
            raise CacheError(
                f"timed out waiting for the lock {path} (another sync or gc is running)"
            ) from None
        except OSError as exc:  # a read-only, full or foreign cache root
            raise CacheError(
                f"cannot write the cache folder {path.parent}: {exc.strerror or exc}"
            ) from None
        with held:  # errors of the locked work itself pass through unchanged
            yield
