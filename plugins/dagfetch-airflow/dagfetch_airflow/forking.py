"""Airflow's at-fork hook, skipped where it has nothing to do: in an extraction worker.

``airflow.settings`` registers ``clean_in_fork`` with ``os.register_at_fork``: every forked
child disposes of the metadata database engines' connection pools (``engine.dispose(close=
False)``), so that it never shares a connection the parent opened. dagfetch's extraction
worker forks a child per DAG file and never connects to the database, so the pools are empty
and disposing of them replaces an empty pool with another, at a cost: with Airflow loaded it
was 1.6 ms of CPU and about 480 copied 4 KB pages in every child, most of what a child pays
before it starts on its file.

:func:`install` registers hooks around Airflow's: just before a fork, each engine whose pool
holds no connection (a SQLAlchemy queue pool with none idle and none checked out, or a pool
that never keeps one, ``NullPool``), that engine is taken out of ``airflow.settings``, so
that Airflow's hook, which looks the engines up there, skips it; right after the fork, in
the parent and in the child, it is put back. An engine whose pool holds a connection, or is
of a kind not known here, is disposed of by Airflow's hook as before.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

_ENGINES = ("engine", "async_engine")
_taken: dict[str, Any] = {}
#: held from before a fork to after it: two threads forking at once would otherwise see each
#: other's engines taken out, and one child could keep none
_forking = threading.Lock()
_installed = False


def _pool_is_empty(engine: Any) -> bool:
    from sqlalchemy.pool import NullPool, QueuePool

    pool = getattr(getattr(engine, "sync_engine", engine), "pool", None)
    if isinstance(pool, NullPool):
        return True
    return isinstance(pool, QueuePool) and pool.checkedin() == 0 and pool.checkedout() == 0


def _before() -> None:
    _forking.acquire()
    settings = sys.modules.get("airflow.settings")
    if settings is None:
        return
    for name in _ENGINES:
        engine = getattr(settings, name, None)
        try:
            empty = engine is not None and _pool_is_empty(engine)
        except Exception:  # in doubt, Airflow's hook does its work
            empty = False
        if empty:
            _taken[name] = engine
            setattr(settings, name, None)


def _after() -> None:
    """In the parent and in the child (its only thread is the one that forked)."""
    settings = sys.modules.get("airflow.settings")
    if _taken and settings is not None:
        for name, engine in _taken.items():
            setattr(settings, name, engine)
    _taken.clear()
    _forking.release()


def install() -> bool:
    """Register the hooks (once per process; after Airflow's own, which is registered when
    ``airflow.settings`` configures the database). False where ``fork`` is unknown."""
    global _installed
    register = getattr(os, "register_at_fork", None)
    if register is None:
        return False
    if not _installed:
        # "before" hooks run in the reverse order of registration, the "after" ones in that
        # order: ours takes the engines out first and puts them back after Airflow's ran
        register(before=_before, after_in_parent=_after, after_in_child=_after)
        _installed = True
    return True
