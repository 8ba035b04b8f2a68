"""What the conformance suite needs from a backend's test fixture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Remote(Protocol):
    """A writable remote repository for the suite.

    ``url`` is the repository's manifest URL; ``entry`` holds the other manifest fields
    needed to reach it (``conn_id``, ``options``). Writes may be buffered until ``push``
    (git commits and pushes there); stores that write through make ``push`` a no-op.

    Optional capabilities, read with ``getattr`` and a default of ``False``:
    ``unsafe_names`` (can store a key like ``../x``), ``symlinks`` (can store symlinks, and
    then has ``symlink(path, target)``).
    """

    url: str
    entry: dict[str, Any]

    def write(self, path: str, data: bytes) -> None: ...

    def delete(self, path: str) -> None: ...

    def push(self) -> None: ...


class LocalRemote:
    """A folder on the local disk, reached as ``file://``: the reference implementation."""

    unsafe_names = False
    symlinks = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = root.as_uri()
        self.entry: dict[str, Any] = {}

    def write(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def delete(self, path: str) -> None:
        (self.root / path).unlink()

    def symlink(self, path: str, target: str) -> None:
        link = self.root / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def push(self) -> None:
        return None
