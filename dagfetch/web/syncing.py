"""Syncs the web server runs itself: one repository when its hook fires, and with
``dagfetch serve --watch`` every repository each ``refresh_interval`` (what
``dagfetch sync --watch --extract`` does), each timed for the metrics.

A sync is the workspace's; the extraction after it is the graph pipeline's, so a new version's
graphs are in the database before the pages show it. Two syncs of one repository never run at
once: the cache's repository lock serializes them, across processes too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from dagfetch.errors import DagfetchError
from dagfetch.graphs.pipeline import GraphPipeline, RepoOutcome
from dagfetch.models import SyncResult
from dagfetch.redact import get_logger

log = get_logger(__name__)

#: Called with each repository's outcome and how long its sync and its extraction took.
OutcomeListener = Callable[[RepoOutcome, float, float], None]


class SyncRunner:
    """Runs syncs (then extractions) and tells its listeners how each went."""

    def __init__(self, pipeline: GraphPipeline, *, publish: bool = False) -> None:
        self.pipeline = pipeline
        self.publish = publish
        self.listeners: list[OutcomeListener] = []
        self.runs = 0  # syncs started by this runner: what the hook tests count
        self._count_lock = threading.Lock()

    def run(self, repo_ids: Sequence[str]) -> list[RepoOutcome]:
        """Sync and extract each repository in turn; a failure is reported in its outcome."""
        outcomes = []
        for repo_id in repo_ids:
            with self._count_lock:
                self.runs += 1
            started = time.monotonic()
            try:
                results = self.pipeline.workspace.sync([repo_id])
            except DagfetchError as exc:  # the repository cannot be served (its connection)
                results = [SyncResult(repo_id, None, False, error=str(exc))]
            synced = time.monotonic()
            outcome = self.pipeline.after_sync(results, publish=self.publish)[0]
            extracted = time.monotonic()
            for listener in self.listeners:
                listener(outcome, synced - started, extracted - synced)
            if outcome.error:
                log.warning("%s: %s", repo_id, outcome.error)
            outcomes.append(outcome)
        return outcomes

    def watch(self, stop: threading.Event) -> None:
        """Sync each repository every ``refresh_interval`` of its own until ``stop``."""
        manifest = self.pipeline.workspace.manifest
        due = {spec.id: 0.0 for spec in manifest.repositories}
        while not stop.is_set():
            ready = [repo_id for repo_id, at in due.items() if at <= time.monotonic()]
            for repo_id in ready:
                if stop.is_set():
                    return
                try:
                    self.run([repo_id])
                except Exception:  # a bug must not end the loop that keeps the cache fresh
                    log.exception("%s: the sync loop failed; it goes on", repo_id)
                due[repo_id] = time.monotonic() + manifest.get(repo_id).refresh_interval
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))
