"""Code the concurrency tests run in separate processes (spawned: a fresh interpreter each)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dagfetch.graphs import Graph, GraphStore


def serve(jobs: Any, barrier: Any, out: Any) -> None:
    """A racer process: runs jobs until it gets None (spawning is the slow part, so the
    racers live for the whole session)."""
    while (job := jobs.get()) is not None:
        race(*job, barrier=barrier, out=out)


def race(url: str, prefix: str, job: str, payload: dict[str, Any], interleave: bool, *,
         barrier: Any, out: Any) -> None:
    """Record ``payload`` once, at the same moment as the other racers.

    With ``interleave`` every racer waits, *inside* its first transaction right after its
    first read, until all have read: so all of them decided "this graph is new" before any
    of them wrote. That is the worst case, made certain instead of left to timing. (Not on
    SQLite: its write transactions hold the database lock from BEGIN, so they cannot overlap.)
    """
    try:
        store = GraphStore(url, prefix=prefix, upgrade=False)
        state = {"waited": False, "attempts": 0}

        def on_begin(conn: Any) -> None:
            state["attempts"] += 1

        def after_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            # only inside the record's transaction: the driver's own SELECTs when it first
            # connects (server version, schema) come before any BEGIN, and waiting at one of
            # those left the race to timing (under load one racer finished before the other)
            if (not state["waited"] and state["attempts"] > 0
                    and statement.lstrip().upper().startswith("SELECT")):
                state["waited"] = True
                barrier.wait(timeout=30)

        sa.event.listen(store.engine, "begin", on_begin)
        if interleave:
            sa.event.listen(store.engine, "after_cursor_execute", after_read)
        else:
            barrier.wait(timeout=30)
        if job == "record":
            result = store.record(Graph.from_json(payload))
            out.put(("ok", result.version.number, result.created, state["attempts"]))
        else:
            graph = Graph.from_json(payload["graph"])
            extraction = store.record_extraction("repo", payload["version"],
                                                 [("etl.py", graph)], {}, file_count=1)
            out.put(("ok", extraction.recorded, None, state["attempts"]))
        store.close()
    except BaseException as exc:  # report, so the test fails with the reason
        out.put(("error", repr(exc), None, 0))
