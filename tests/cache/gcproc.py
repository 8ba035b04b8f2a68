"""Run in a child process by the cache tests: a gc that SIGKILLs itself half-way.

    python -m tests.cache.gcproc CACHE KEEP AFTER

The process kills itself (``kill -9``, nothing cleans up) at its AFTER-th file deletion: the
moment a gc removing a tree with a plain recursive delete leaves half of it behind.
"""

from __future__ import annotations

import os
import signal
import sys

from dagfetch.cache import VersionCache


def main(argv: list[str]) -> None:
    cache, keep, after = argv[0], int(argv[1]), int(argv[2])
    calls = 0
    unlink = os.unlink

    def dying_unlink(path: object, *args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls >= after:
            os.kill(os.getpid(), signal.SIGKILL)
        unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    os.unlink = dying_unlink  # type: ignore[assignment]
    VersionCache(cache).gc({"r": keep}, grace_seconds=0)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
