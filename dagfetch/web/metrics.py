"""``/metrics`` in the Prometheus text format.

Two kinds of numbers:

- **what the cache and the database say**, read at each scrape (so every server process
  reports the same): versions per repository and state, seconds since the last successful
  sync, whether the last sync failed, how old the published version is, the DAGs the store
  knows, and the import errors of each repository's newest extraction;
- **what this process did**: the syncs it ran (hooks, ``serve --watch``): their durations,
  results, downloaded bytes and files, and the durations of the extractions after them; and
  the hook requests it answered. A process that runs no sync reports none of these.

Each app has its own registry, so several apps in one process (tests, a scheduler mounting
two) never mix their numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dagfetch.graphs import queries
from dagfetch.graphs.pipeline import RepoOutcome
from dagfetch.redact import get_logger
from dagfetch.web.context import WebContext, age_seconds, parse_time

log = get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class StateCollector(Collector):
    """The gauges read from the cache and the graph store at each scrape."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        versions = GaugeMetricFamily("dagfetch_versions", "Versions of a repository in the "
                                     "cache, by state", labels=["repo", "state"])
        since = GaugeMetricFamily("dagfetch_seconds_since_last_success",
                                  "Seconds since the repository's last successful sync",
                                  labels=["repo"])
        failing = GaugeMetricFamily("dagfetch_last_sync_failed", "1 when the repository's "
                                    "last sync failed", labels=["repo"])
        published = GaugeMetricFamily("dagfetch_published_age_seconds", "Seconds since the "
                                      "repository's version was published", labels=["repo"])
        errors = GaugeMetricFamily("dagfetch_import_errors", "Import errors of the "
                                   "repository's newest extraction", labels=["repo"])
        dags = GaugeMetricFamily("dagfetch_dags", "Active DAGs with a graph in the store")
        cache = self.ctx.workspace.cache
        try:
            with self.ctx.reading() as conn:
                publications = {spec.id: queries.publication(conn, self.ctx.tables, spec.id)
                                for spec in self.ctx.workspace.manifest.repositories}
                dags.add_metric([], len(queries.latest_all(conn, self.ctx.tables)))
            error_counts: dict[str, int] = {}
            for error in self.ctx.store.import_errors():
                error_counts[error.repo_id] = error_counts.get(error.repo_id, 0) + 1
        except Exception:  # a scrape must still show the cache when the database is down
            log.exception("metrics: the graph store could not be read")
            publications, error_counts = {}, {}
        for spec in self.ctx.workspace.manifest.repositories:
            counts = {"materialized": 0, "stored": 0, "evicted": 0}
            for entry in cache.versions(spec.id):
                state = "evicted" if not entry.present else (
                    "materialized" if entry.materialized else "stored")
                counts[state] += 1
            for state, count in counts.items():
                versions.add_metric([spec.id, state], count)
            meta = cache.state(spec.id) if cache.layout.meta(spec.id).exists() else {}
            last_success = age_seconds(parse_time(meta.get("last_success_at")))
            if last_success is not None:
                since.add_metric([spec.id], last_success)
            failing.add_metric([spec.id], 1.0 if meta.get("last_error") else 0.0)
            publication = publications.get(spec.id)
            if publication is not None:
                published.add_metric([spec.id], age_seconds(publication[1]) or 0.0)
            errors.add_metric([spec.id], error_counts.get(spec.id, 0))
        yield from (versions, since, failing, published, errors, dags)


class Metrics:
    """One app's metrics: the scrape-time gauges and the counters of this process."""

    def __init__(self, ctx: WebContext) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(ctx))
        self.syncs = Counter("dagfetch_syncs", "Syncs this process ran, by result",
                             ["repo", "result"], registry=self.registry)
        self.sync_seconds = Histogram("dagfetch_sync_duration_seconds", "How long the syncs "
                                      "this process ran took", ["repo"],
                                      buckets=DURATION_BUCKETS, registry=self.registry)
        self.downloaded_bytes = Counter("dagfetch_downloaded_bytes", "Bytes the syncs of this "
                                        "process downloaded", ["repo"], registry=self.registry)
        self.downloaded_files = Counter("dagfetch_downloaded_files", "Files the syncs of this "
                                        "process downloaded", ["repo"], registry=self.registry)
        self.extraction_seconds = Histogram("dagfetch_extraction_duration_seconds",
                                            "How long the extractions after this process's "
                                            "syncs took", ["repo"], buckets=DURATION_BUCKETS,
                                            registry=self.registry)
        self.hook_requests = Counter("dagfetch_hook_requests", "Hook requests, by outcome",
                                     ["repo", "outcome"], registry=self.registry)

    def observe(self, outcome: RepoOutcome, sync_seconds: float,
                extraction_seconds: float) -> None:
        """Record one sync (and the extraction after it) of a :class:`SyncRunner`."""
        repo = outcome.repo_id
        result = outcome.sync
        if result is None or result.error:
            self.syncs.labels(repo, "failed").inc()
        else:
            self.syncs.labels(repo, "changed" if result.changed else "unchanged").inc()
            self.downloaded_bytes.labels(repo).inc(result.downloaded_bytes)
            self.downloaded_files.labels(repo).inc(result.downloaded)
        self.sync_seconds.labels(repo).observe(sync_seconds)
        if outcome.extraction is not None and outcome.extraction.recorded:
            self.extraction_seconds.labels(repo).observe(extraction_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
