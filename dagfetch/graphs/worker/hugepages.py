"""The warm worker's heap on transparent huge pages (Linux), to make its forks cheaper.

A fork copies one page-table entry per 4 KB page the worker has mapped, and the child's exit
unmaps them all again: with Airflow imported that is about 30,000 entries, a few
milliseconds of CPU per forked child, paid by every DAG file. Once the worker has loaded
what it keeps (after ``gc.freeze()``), :func:`collapse` asks the kernel
(``madvise(MADV_COLLAPSE)``, Linux 6.1 and later) to back the heap's 2 MB-aligned ranges
with huge pages, each one entry at the level above: the fork copies a few hundred entries
instead, and the exit unmaps as few. Copy-on-write is unchanged for the child: its first
write into a shared huge page splits the child's mapping of it and copies the one 4 KB page
written (the kernel has done so since 5.8), never the 2 MB.

Only private writable anonymous mappings are advised (the malloc heap, Python's arenas); the
files the interpreter mapped are left alone. Where the advice is unknown (older kernels, other
systems), refused (``prctl(PR_SET_THP_DISABLE)``, no memory free to assemble a huge page) or
the C library cannot be called, nothing happens: the huge pages are an optimisation, never a
requirement.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any

_MADV_COLLAPSE = 25  # linux/mman.h, 6.1
_HUGE = 2 << 20  # the PMD size of x86-64 and arm64 with 4 KB pages
_MAPS = "/proc/self/maps"


@functools.cache
def _madvise() -> Any:
    """libc's ``madvise``, or None."""
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def anonymous_ranges(maps: str) -> list[tuple[int, int]]:
    """The 2 MB-aligned parts of the private writable anonymous mappings in ``maps`` (the
    text of ``/proc/self/maps``): the heap, never a file, a stack or a shared mapping."""
    ranges = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        perms, name = fields[1], fields[5].strip() if len(fields) > 5 else ""
        if not perms.startswith("rw") or perms[3:4] != "p" or name not in ("", "[heap]"):
            continue
        start, _, end = fields[0].partition("-")
        low = -(-int(start, 16) // _HUGE) * _HUGE
        high = int(end, 16) // _HUGE * _HUGE
        if high > low:
            ranges.append((low, high))
    return ranges


def collapse() -> int:
    """Back this process's anonymous memory with huge pages where the kernel can; the
    number of ranges it accepted (0 where it cannot: not Linux, an older kernel, refused)."""
    if not sys.platform.startswith("linux"):
        return 0
    madvise = _madvise()
    if madvise is None:
        return 0
    try:
        with open(_MAPS, encoding="ascii") as file:
            maps = file.read()
    except OSError:
        return 0
    done = 0
    for low, high in anonymous_ranges(maps):
        # per range: one the kernel refuses (EINVAL before 6.1, EAGAIN when no huge page is
        # free, EPERM under PR_SET_THP_DISABLE) leaves the others to try
        if madvise(low, high - low, _MADV_COLLAPSE) == 0:
            done += 1
    return done
