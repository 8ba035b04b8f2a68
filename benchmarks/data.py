"""Generated test data: trees of small files and changes to them."""

from __future__ import annotations

import os
import random
from pathlib import Path


def file_bytes(i: int, size: int, generation: int = 0) -> bytes:
    head = f"# file {i} generation {generation}\n".encode()
    return head + b"x" * max(0, size - len(head))


def relpath(i: int, per_dir: int = 100) -> str:
    return f"dags/d{i // per_dir:03}/f{i:06}.py"


def make_tree(root: Path, count: int, size: int) -> list[str]:
    paths = []
    for i in range(count):
        rel = relpath(i)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file_bytes(i, size))
        paths.append(rel)
    return paths


def churn(count: int, fraction: float, seed: int) -> list[int]:
    """Indexes of the files one version changes: ``fraction`` of ``count``, at random."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    return rng.sample(range(count), max(1, int(count * fraction)))


def disk_usage(root: Path) -> int:
    """Bytes the file system allocates for ``root``: every directory, and each file's inode
    once however many hard links point at it."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        total += os.lstat(dirpath).st_blocks * 512
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                total += os.lstat(full).st_blocks * 512
    return total
