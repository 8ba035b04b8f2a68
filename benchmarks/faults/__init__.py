"""The fault run: classes of faults, each tried many times, and what survived them.

A fault class is one thing that goes wrong (a sync killed at a random moment, a server that
lies about sizes, a DAG file that forks for ever...). Its ``run`` function sets the fault up
in a scratch folder, lets dagfetch meet it, and checks the invariants afterwards:

- ``current`` is a complete version equal to a state the remote had;
- no partial version, no file outside the cache, no code of a DAG file ran in the syncing
  process, no secret in any output, log, database row or cache file;
- the next sync succeeds.

The same functions serve two masters: ``tests/faults/`` runs each class a few times in CI
(``quick_attempts``), and ``python -m benchmarks --only faults`` runs each ``attempts`` times
and writes the table in docs/reliability.md. Modules of this package register their classes
with :func:`fault_class`; :data:`MODULES` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

# one module per group of classes; each registers its classes when imported
MODULES: list[str] = ["benchmarks.faults.remotes", "benchmarks.faults.dag_code"]


@attrs.frozen
class Outcome:
    """What one attempt left behind. ``survived`` means every invariant held."""

    survived: bool
    lost_data: bool = False  # current or a pinned version lost, or holding other bytes
    partial_version: bool = False  # a version (or what `path` served) missing files or mixed
    escaped: bool = False  # a file outside the cache, code run in the syncing process, a leak
    detail: str = ""  # what broke, for the report (never a secret)


Attempt = Callable[[Path, int], Outcome]  # (a fresh scratch folder, the attempt number)


@attrs.frozen
class FaultClass:
    name: str  # short, unique: "kill-during-sync"
    group: str  # "sync", "gc", "extract", "disk", "remote", "names", "dag-code", ...
    description: str  # one line for the table
    run: Attempt
    attempts: int = 50  # in the benchmark-style run
    quick_attempts: int = 3  # in CI
    needs_root: str | None = None  # why it needs root (tmpfs mounts...): skipped otherwise


REGISTRY: dict[str, FaultClass] = {}


def fault_class(
    name: str, group: str, description: str, *, attempts: int = 50, quick_attempts: int = 3,
    needs_root: str | None = None,
) -> Callable[[Attempt], Attempt]:
    """Register ``run`` as a fault class."""

    def register(run: Attempt) -> Attempt:
        if name in REGISTRY:
            raise ValueError(f"fault class {name!r} is registered twice")
        REGISTRY[name] = FaultClass(name, group, description, run, attempts, quick_attempts,
                                    needs_root)
        return run

    return register
