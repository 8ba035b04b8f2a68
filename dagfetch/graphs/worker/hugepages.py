"""The warm worker's heap on transparent huge pages (Linux), to make its forks cheaper.

A fork copies one page-table entry per 4 KB page the worker has mapped, and the child's exit
unmaps them all again: with Airflow imported that is about 23,000 entries, a few
milliseconds of CPU per forked child, paid by every DAG file. Once the worker has loaded
what it keeps and parsed a few files (see ``COLLAPSE_AT_FILE`` in
:mod:`~dagfetch.graphs.worker.zygote`), :func:`collapse` asks the kernel
(``madvise(MADV_COLLAPSE)``, Linux 6.1 and later) to back the heap's aligned 2 MB ranges
with huge pages, each one entry at the level above: the fork copies far fewer entries, and
the exit unmaps as few. Copy-on-write is unchanged for the child: its first write into a
shared huge page splits the child's mapping of it and copies the one 4 KB page written (the
kernel has done so since 5.8), never the 2 MB.

Only private writable anonymous mappings are advised (the malloc heap, Python's arenas), and
of them only the ranges whose pages are mostly in memory already: a huge page is whole, so
collapsing a mostly unused range (a thread's stack) would make all of it resident. Where the
advice is unknown (older kernels, other systems), refused (``prctl(PR_SET_THP_DISABLE)``, no
memory free to assemble a huge page) or the C library cannot be called, nothing happens: the
huge pages are an optimisation, never a requirement.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys
from typing import Any

_MADV_COLLAPSE = 25  # linux/mman.h, 6.1
_MAPS = "/proc/self/maps"
_PMD_SIZE = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"
#: a range is collapsed when at least this share of its small pages is resident already
RESIDENT_SHARE = 0.5


@functools.cache
def _libc() -> Any:
    """libc's ``madvise`` and ``mincore``, or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise, mincore = libc.madvise, libc.mincore
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    madvise.restype = mincore.restype = ctypes.c_int
    return madvise, mincore


def huge_page_size() -> int:
    """The kernel's huge page size (2 MB with 4 KB pages on x86-64 and arm64)."""
    try:
        with open(_PMD_SIZE, encoding="ascii") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 2 << 20


def anonymous_ranges(maps: str, huge: int) -> list[tuple[int, int]]:
    """The ``huge``-aligned parts of the private writable anonymous mappings in ``maps`` (the
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
        low = -(-int(start, 16) // huge) * huge
        high = int(end, 16) // huge * huge
        if high > low:
            ranges.append((low, high))
    return ranges


def collapse() -> int:
    """Back this process's mostly resident anonymous memory with huge pages where the kernel
    can; how many huge pages it made or found (0 where it cannot: not Linux, an older
    kernel, refused)."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = _libc()
    if libc is None:
        return 0
    madvise, mincore = libc
    try:
        with open(_MAPS, encoding="ascii") as file:
            maps = file.read()
    except OSError:
        return 0
    huge = huge_page_size()
    pages = huge // mmap.PAGESIZE
    resident = ctypes.create_string_buffer(pages)
    done = 0
    for low, high in anonymous_ranges(maps, huge):
        for start in range(low, high, huge):
            if mincore(start, huge, resident) != 0:
                continue
            present = sum(byte & 1 for byte in resident.raw)
            # one range the kernel refuses (EINVAL before 6.1, EAGAIN when no huge page is
            # free, EPERM under PR_SET_THP_DISABLE) leaves the others to try
            if present >= pages * RESIDENT_SHARE and madvise(start, huge, _MADV_COLLAPSE) == 0:
                done += 1
    return done
