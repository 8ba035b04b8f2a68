"""How much one repository may hold and take: the manifest's ``limits`` table.

A remote many people can write to may hold a 1 GiB file, a million files, a path 10,000
folders deep, an HTTP index that links to itself, or a server that never stops sending. Each
repository gets safe defaults, set higher or lower per repository::

    [dag_repositories.big.limits]
    max_file_bytes = 268435456
    sync_timeout = "2h"

Two places enforce them, the same way for every backend:

- the core checks a listing before anything is downloaded (:func:`check_listing`: file
  count, listed sizes, path depth and length);
- a backend counts bytes while they arrive (:class:`ByteBudget`), and stops at the first
  chunk past a limit, or past the size its listing gave (a server that lies about sizes).

Every refusal is a :class:`~dagfetch.errors.LimitExceeded` naming the file, the limit and the
manifest field that sets it (``dag_repositories.<id>.limits.<name>``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dagfetch.errors import LimitExceeded, ManifestError, VerificationError
from dagfetch.options import option, parse_options

__all__ = ["ByteBudget", "FileBudget", "Limits", "check_listing", "parse_limits"]

MiB = 1024 * 1024
GiB = 1024 * MiB


@attrs.frozen
class Limits:
    """One repository's limits. Every field is an option of the manifest's ``limits`` table."""

    max_file_bytes: int = option(100 * MiB, ge=1, help="bytes of one file")
    max_version_bytes: int = option(2 * GiB, ge=1, help="bytes of all files of one version")
    max_files: int = option(200_000, ge=1, help="files (and symlinks) in one version")
    max_path_depth: int = option(64, ge=1, help="folders a path may be nested in, plus one")
    max_path_length: int = option(1024, ge=1, help="bytes of one path (UTF-8)")
    max_http_folders: int = option(10_000, ge=1, help="index pages an HTTP listing may visit")
    sync_timeout: float = option(3600.0, gt=0, help="seconds one whole sync may take")
    connect_timeout: float = option(10.0, gt=0, help="seconds to open one connection")
    read_timeout: float = option(60.0, gt=0, help="seconds a connection may stay silent")
    name_twins: str = option(
        "refuse",
        choices=("refuse", "allow"),
        help="paths equal but for case or Unicode normalization (A.py and a.py collide on "
        "macOS and Windows checkouts): 'refuse' fails the sync naming both",
    )

DEFAULT_LIMITS = Limits()


def parse_limits(values: Any, *, field: str) -> Limits:
    """The manifest's ``limits`` table (``field``: its dotted path), checked."""
    if values is None:
        return DEFAULT_LIMITS
    if not isinstance(values, Mapping):
        raise ManifestError(field, "must be a table of limits")
    return parse_options(Limits, values, field=field)


def _refuse(repo_field: str, path: str, what: str, name: str, value: int | float) -> LimitExceeded:
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return LimitExceeded(path, f"{what}, more than {name} = {shown}",
                         f"{repo_field}.limits.{name}")


def check_listing(
    files: Iterable[tuple[str, int]], limits: Limits, *, repo_field: str
) -> None:
    """Refuse a listing past the limits before a byte is downloaded. ``files``: (path,
    listed size; negative when unknown) of every file and symlink the version would hold."""
    total = 0
    for count, (path, size) in enumerate(files, start=1):
        if count > limits.max_files:
            raise _refuse(repo_field, path, f"file number {count}", "max_files",
                          limits.max_files)
        depth = path.count("/") + 1
        if depth > limits.max_path_depth:
            raise _refuse(repo_field, path, f"{depth} levels deep", "max_path_depth",
                          limits.max_path_depth)
        length = len(path) if path.isascii() else len(path.encode("utf-8", "surrogateescape"))
        if length > limits.max_path_length:
            raise _refuse(repo_field, path, f"a path of {length} bytes", "max_path_length",
                          limits.max_path_length)
        if size > limits.max_file_bytes:
            raise _refuse(repo_field, path, f"{size} bytes", "max_file_bytes",
                          limits.max_file_bytes)
        total += max(size, 0)
        if total > limits.max_version_bytes:
            raise _refuse(repo_field, path, f"{total} bytes in all up to this file",
                          "max_version_bytes", limits.max_version_bytes)


class ByteBudget:
    """The bytes one fetch may still write: per file (the listed size, else
    ``max_file_bytes``) and for the whole version. Thread-safe; one per fetch."""

    def __init__(self, limits: Limits, *, repo_field: str) -> None:
        self.limits = limits
        self.repo_field = repo_field
        self._total = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return self._total

    def file(self, path: str, listed_size: int) -> FileBudget:
        return FileBudget(self, path, listed_size)

    def _give_back(self, nbytes: int) -> None:
        with self._lock:
            self._total -= nbytes

    def _take(self, path: str, nbytes: int) -> None:
        with self._lock:
            self._total += nbytes
            total = self._total
        if total > self.limits.max_version_bytes:
            raise _refuse(self.repo_field, path, f"{total} bytes downloaded by this file",
                          "max_version_bytes", self.limits.max_version_bytes)


class FileBudget:
    """One file's share of a :class:`ByteBudget`; :meth:`add` each chunk as it arrives."""

    def __init__(self, budget: ByteBudget, path: str, listed_size: int) -> None:
        self.budget = budget
        self.path = path
        self.listed_size = listed_size
        self.received = 0

    def add(self, nbytes: int) -> None:
        """Count ``nbytes`` more; raise at the first chunk past the listed size (the server
        lied) or past ``max_file_bytes``."""
        self.received += nbytes
        limits = self.budget.limits
        if 0 <= self.listed_size < self.received:
            raise VerificationError(
                f"{self.path}: the server sent more than the {self.listed_size} bytes its "
                "listing said; stopped reading"
            )
        if self.received > limits.max_file_bytes:
            raise _refuse(self.budget.repo_field, self.path,
                          f"more than {limits.max_file_bytes} bytes received",
                          "max_file_bytes", limits.max_file_bytes)
        self.budget._take(self.path, nbytes)

    def refund(self) -> None:
        """Give this file's bytes back to the version's budget: its read failed and will
        start again (a retry), or not at all."""
        self.budget._give_back(self.received)
        self.received = 0
