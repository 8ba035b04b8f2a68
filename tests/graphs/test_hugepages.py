"""The warm worker's heap on huge pages: which mappings are advised, and what a child's write
into a shared huge page costs it (one 4 KB page, not 2 MB)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from dagfetch.graphs.worker import hugepages

MAPS = """\
00400000-00a00000 r-xp 00000000 08:01 1234    /usr/bin/python3.11
01000000-01700000 rw-p 00000000 00:00 0       [heap]
7f0000100000-7f0000500000 rw-p 00000000 00:00 0
7f0000600000-7f0000700000 rw-p 00000000 00:00 0
7f0000800000-7f0000c00000 rw-s 00000000 00:01 99      /dev/shm/shared
7f0000c00000-7f0001000000 rw-p 00001000 08:01 1235    /usr/lib/libpython3.11.so.1.0
7f0001000000-7f0001400000 r--p 00000000 00:00 0
7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0       [stack]
"""


def test_only_the_aligned_parts_of_private_writable_anonymous_mappings_are_advised() -> None:
    mb = 1 << 20
    assert hugepages.anonymous_ranges(MAPS, 2 * mb) == [
        (0x01000000, 0x01000000 + 6 * mb),  # the heap, its last 1 MB not a whole huge page
        (0x7f0000200000, 0x7f0000400000),  # 4 MB from 1 MB: the one aligned 2 MB in it
    ]  # not the binary, a shared or file mapping, a read-only one, nor the stack


PROBE = """
import json, os, sys
from dagfetch.graphs.worker import hugepages

def rollup():
    with open("/proc/self/smaps_rollup") as f:
        return {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1] == "kB"}

heap = bytearray(os.urandom(1 << 20) * 16)  # 16 MB of written anonymous memory
advised = hugepages.collapse()
huge = rollup().get("AnonHugePages", 0)
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    before = rollup()["Private_Dirty"]
    for offset in range(0, len(heap), 2 << 20):
        heap[offset] ^= 1  # one byte in each 2 MB
    os.write(write, str(rollup()["Private_Dirty"] - before).encode())
    os._exit(0)
os.close(write)
copied = int(os.read(read, 100))
os.waitpid(pid, 0)
print(json.dumps({"advised": advised, "huge_kb": huge, "copied_kb": copied}))
"""


SPARSE = """
import json, mmap
from dagfetch.graphs.worker import hugepages

def rss():
    with open("/proc/self/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Rss:"))

sparse = mmap.mmap(-1, 16 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for offset in range(0, len(sparse), 2 << 20):
    sparse[offset] = 1  # one small page in each 2 MB: mostly unused, as a thread's stack
before = rss()
hugepages.collapse()
print(json.dumps({"grown_kb": rss() - before}))
"""


def _kernel() -> tuple[int, ...]:
    return tuple(int(part) for part in platform.release().split("-")[0].split(".")[:2])


def _needs_collapse() -> None:
    settings = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not sys.platform.startswith("linux") or _kernel() < (6, 1) or not settings.exists() \
            or "[never]" in settings.read_text():
        pytest.skip("MADV_COLLAPSE needs Linux 6.1 or later with transparent huge pages")


def _run(code: str) -> str:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
                          ).stdout


def test_a_child_writing_into_shared_huge_pages_copies_small_pages() -> None:
    _needs_collapse()
    probe = json.loads(_run(PROBE))
    assert probe["advised"] >= 1
    assert probe["huge_kb"] >= 8 * 1024  # most of the 16 MB is on huge pages
    # eight writes, 2 MB apart: eight 4 KB pages copied (and a few of the interpreter's
    # own), never eight 2 MB huge pages
    assert probe["copied_kb"] < 1024


def test_mostly_unused_memory_is_left_on_small_pages() -> None:
    _needs_collapse()
    probe = json.loads(_run(SPARSE))
    assert probe["grown_kb"] < 2048  # not the 16 MB that whole huge pages would make resident


def test_collapse_never_fails_where_it_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hugepages, "_MAPS", "/nonexistent/maps")
    assert hugepages.collapse() == 0
    monkeypatch.setattr(hugepages.sys, "platform", "darwin")
    assert hugepages.collapse() == 0


def _huge_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        return sum(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))


def test_a_worker_puts_its_heap_on_huge_pages_once_it_parsed_a_few_files(
    tmp_path: Path,
) -> None:
    # a worker that parses fewer files never pays for collapsing (15 to 45 ms with Airflow)
    _needs_collapse()
    from dagfetch.graphs.extract import extract_version, resolve_extractors
    from dagfetch.graphs.worker.pool import WorkerPool
    from dagfetch.graphs.worker.settings import WorkerSettings
    from dagfetch.graphs.worker.zygote import COLLAPSE_AT_FILE
    from tests.graphs.dagfiles import chain_dag, repo_files
    from tests.graphs.test_graph_extract import write_tree

    one = WorkerSettings(workers=1, preload=("tests.graphs.big_heap",))
    few = write_tree(tmp_path / "few", repo_files(**{
        f"d{n}": chain_dag(f"d{n}", ["a"]) for n in range(COLLAPSE_AT_FILE - 1)}))
    more = write_tree(tmp_path / "more", repo_files(last=chain_dag("last", ["a"])))
    with WorkerPool(resolve_extractors(None), one) as pool:
        assert len(extract_version(few, settings=one, pool=pool).graphs) == COLLAPSE_AT_FILE - 1
        [worker] = pool._workers
        assert _huge_kb(worker.proc.pid) == 0
        assert len(extract_version(more, settings=one, pool=pool).graphs) == 1
        assert _huge_kb(worker.proc.pid) >= 8 * 1024  # most of the 16 MB it holds
