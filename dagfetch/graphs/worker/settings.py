"""The manifest's ``[extract]`` table: how many workers, their limits, what they may read.

    [extract]
    workers = 4                     # default: one per core this process may use
    file_timeout = "30s"            # per DAG file, enforced by the worker and by dagfetch
    max_processes = 64              # processes one DAG file may start (fork bombs)
    environment = ["AIRFLOW__*"]    # extra variables DAG code may read (fnmatch patterns)
    preload = ["pandas"]            # modules imported once per worker, before any file
    user = "dagcode"                # run DAG files as this user (needs root; off by default)
    files_per_child = 1             # DAG files one forked child parses in turn (opt-in: > 1)
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from typing import Any

import attrs

from dagfetch.errors import ManifestError
from dagfetch.graphs.worker.environment import check_patterns
from dagfetch.manifest import parse_duration

DEFAULT_FILE_TIMEOUT = 30.0
DEFAULT_MAX_PROCESSES = 64
_KEYS = {"workers", "file_timeout", "max_processes", "environment", "preload", "user",
         "files_per_child"}


def default_workers() -> int:
    """One worker per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@attrs.frozen
class WorkerSettings:
    """How extraction workers run (the manifest's ``[extract]`` table)."""

    workers: int | None = None  # None: one per core
    file_timeout: float = DEFAULT_FILE_TIMEOUT
    environment: tuple[str, ...] = ()  # extra variables (fnmatch patterns) DAG code may read
    max_processes: int = DEFAULT_MAX_PROCESSES  # processes one DAG file may start
    preload: tuple[str, ...] = ()  # modules imported once per worker before any file
    #: run DAG files as this user: they cannot read the syncing process's memory or
    #: environment, nor files only its own user may read (needs root)
    user: str | None = None
    #: DAG files one forked child parses in turn (1: a fresh child per file). More is faster
    #: (one fork for many files, as Airflow's DagBag parses them in one process) but the
    #: files of one child share its interpreter: see docs/graph-store.md
    files_per_child: int = 1

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str | None = None) -> WorkerSettings:
        """Check ``[extract]``; a bad value is a ManifestError naming ``extract.<field>``."""

        def fail(key: str, message: str) -> ManifestError:
            return ManifestError(f"extract.{key}", message, source=source)

        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise fail(unknown[0], f"unknown setting (known: {', '.join(sorted(_KEYS))})")
        settings = cls()
        if "workers" in table:
            workers = table["workers"]
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise fail("workers", "must be a whole number of at least 1")
            settings = attrs.evolve(settings, workers=workers)
        if "max_processes" in table:
            limit = table["max_processes"]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise fail("max_processes", "must be a whole number of at least 1")
            settings = attrs.evolve(settings, max_processes=limit)
        if "files_per_child" in table:
            count = table["files_per_child"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise fail("files_per_child", "must be a whole number of at least 1 (1: a fresh "
                           "process per DAG file, the default)")
            settings = attrs.evolve(settings, files_per_child=count)
        if "file_timeout" in table:
            seconds = parse_duration(table["file_timeout"])
            if seconds is None or seconds <= 0:
                raise fail("file_timeout", "must be a positive duration ('30s', 90)")
            settings = attrs.evolve(settings, file_timeout=seconds)
        if "user" in table:
            user = table["user"]
            if not isinstance(user, str) or not user:
                raise fail("user", "must be a user name")
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise fail("user", f"no user {user!r} on this machine") from None
            if os.getuid() != 0:
                raise fail("user", "running DAG files as another user needs root")
            settings = attrs.evolve(settings, user=user)
        for key in ("environment", "preload"):
            value = table.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise fail(key, "must be a list of names")
            if key == "environment":
                checked = check_patterns(value, "extract.environment", source)
                settings = attrs.evolve(settings, environment=checked)
            else:
                settings = attrs.evolve(settings, preload=tuple(value))
        return settings
