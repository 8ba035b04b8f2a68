"""One job for the node that syncs: sync -> extract -> record (-> publish); and follow mode
for every other node: fetch exactly the version the leading node published.

    workspace = Workspace.from_manifest("dagfetch.toml")
    pipeline = GraphPipeline(workspace)          # database: manifest `database`, else SQLite
    pipeline.sync(publish=True)                  # on the scheduler
    pipeline.follow()                            # on web servers and workers
    pipeline.pin_run("manual__1", "etl")         # graph in the database, code in the cache

A source version is extracted once: whether it was is asked of the database, so a restart,
a second syncing node or an unchanged sync never parses the same code again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from dagfetch.cache import GcReport
from dagfetch.errors import ConfigError, DagfetchError, ManifestError
from dagfetch.graphs import carryover
from dagfetch.graphs.carryover import PreviousExtraction, carried_outcomes
from dagfetch.graphs.database import default_url as db_default_url
from dagfetch.graphs.extract import (
    BUILTIN_EXTRACTORS,
    DEFAULT_EXTRACTOR,
    extract_version,
    resolve_extractors,
)
from dagfetch.graphs.model import Extraction, GcResult, RunPin, SourceRef, UnstableDag
from dagfetch.graphs.schema import DEFAULT_PREFIX
from dagfetch.graphs.store import DEFAULT_KEEP_SOURCES, GraphStore
from dagfetch.graphs.worker.pool import WorkerPool
from dagfetch.graphs.worker.settings import WorkerSettings
from dagfetch.importing import dag_files
from dagfetch.models import SyncResult
from dagfetch.redact import REPORTED, get_logger
from dagfetch.sync import SyncObserver
from dagfetch.workspace import Workspace

log = get_logger(__name__)


@attrs.frozen
class RepoOutcome:
    """What the pipeline did for one repository."""

    repo_id: str
    version_id: str | None
    sync: SyncResult | None = None
    extraction: Extraction | None = None
    published: bool = False
    followed: bool = False
    error: str | None = None
    #: DAGs whose graph keeps changing while their file does not (see GraphStore.unstable_dags)
    unstable: tuple[UnstableDag, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def extracted(self) -> bool:
        return self.extraction is not None and self.extraction.recorded


def run_holder(run_id: str, dag_id: str) -> str:
    """The cache pin holder name of a run: the cache keeps the run's code while it exists."""
    return f"run-{dag_id}-{run_id}"


class GraphPipeline:
    def __init__(
        self,
        workspace: Workspace,
        store: GraphStore | None = None,
        *,
        database: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        extractors: Sequence[str] | None = None,
        file_timeout: float | None = None,
        extract_settings: WorkerSettings | None = None,
    ) -> None:
        self.workspace = workspace
        named = database or workspace.manifest.database
        self.store = store if store is not None else GraphStore.for_cache(
            workspace.cache.root, named, prefix=prefix)
        #: followers read the published version from the database when one is named, else
        #: from the team cache's pointer (Airflow 3 workers have no database access)
        self.database_named = bool(named) or (
            store is not None and str(store.url) != str(db_default_url(workspace.cache.root)))
        #: extractor names given by the caller (`sync --extractor`): they win over the manifest
        self.extractors = list(extractors) if extractors else None
        manifest = workspace.manifest
        #: the workers' settings: ``extract_settings``, else the manifest's ``[extract]``
        self.extract_settings = extract_settings or WorkerSettings.from_table(
            manifest.extract, manifest.source)
        self.file_timeout = file_timeout
        self._previous: dict[str, PreviousExtraction] = {}  # per repository, see carryover
        #: extraction workers kept warm from one extraction to the next (see close())
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Stop the extraction workers this pipeline keeps warm (also done when it is garbage
        collected and at exit). The pipeline stays usable: workers start again when needed."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> GraphPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def workers(self, refs: Sequence[str], settings: WorkerSettings) -> WorkerPool:
        """The warm workers for these extractors and settings; a pool started for others is
        stopped first (one pool at a time: each worker holds a whole interpreter)."""
        with self._pool_lock:
            if self._pool is None or not self._pool.serves(refs, settings):
                if self._pool is not None:
                    self._pool.close()
                self._pool = WorkerPool(refs, settings)
            return self._pool

    def extractors_for(self, repo_id: str) -> list[str] | None:
        """The extractors a repository's files are parsed with: the caller's, else the
        repository's manifest `extractors`, else the top-level ones, else the default (None).
        A name no installed extractor has is a ConfigError naming where it was written."""
        return self._extractor_refs(repo_id)[0]

    def _extractor_refs(self, repo_id: str) -> tuple[list[str] | None, list[str]]:
        """:meth:`extractors_for`, and the ``module:attr`` references of those extractors
        (resolved once: reading every entry point takes milliseconds)."""
        if self.extractors:
            return list(self.extractors), resolve_extractors(self.extractors)
        chosen, field = self.workspace.manifest.extractors_for(repo_id)
        if not chosen:
            return None, [BUILTIN_EXTRACTORS[DEFAULT_EXTRACTOR]]  # a built-in: no reading
        try:
            return list(chosen), resolve_extractors(chosen)
        except ConfigError as exc:
            raise ManifestError(field, str(exc), source=self.workspace.manifest.source) from None

    # -- the leading node ---------------------------------------------------------------------

    def extract(self, repo_id: str, version_id: str | None = None, *,
                force: bool = False, now_current: bool = False) -> Extraction:
        """Extract and record one cached version (default: current) unless already done.
        ``now_current``: the repository just moved to this version, so a version extracted
        before still decides again which of its DAGs are active (a revert brings them back)."""
        workspace = self.workspace
        if version_id is None:
            current = workspace.current(repo_id)
            if current is None:
                raise DagfetchError(f"{repo_id}: nothing synced yet")
            version_id = current.version_id
        if not force and self.store.is_extracted(repo_id, version_id):
            log.debug("%s: %s was extracted before; not parsing it again", repo_id, version_id)
            vanished = self.store.mark_current(repo_id, version_id) if now_current else None
            return Extraction(SourceRef(repo_id, version_id), recorded=False,
                              vanished=tuple(vanished or ()))
        root: Path = workspace.path(repo_id, version_id)
        # the sha256 the cache verified: what tells an unstable graph from an edited file, and
        # which DAG files changed since the previous extraction (only those run again)
        hashes = {f.path: f.sha256 for f in workspace.cache.get(repo_id, version_id).files}
        files = dag_files(root)
        chosen, refs = self._extractor_refs(repo_id)
        extractors = tuple(chosen) if chosen else None
        settings = attrs.evolve(self.extract_settings, file_timeout=self.file_timeout) \
            if self.file_timeout is not None else self.extract_settings
        previous = self._previous.get(repo_id) or self._kept(repo_id, extractors, settings)
        carried = carried_outcomes(previous, hashes, files, extractors, settings)
        pool = self.workers(refs, settings) if len(carried) < len(files) else None
        result = extract_version(root, files=files, extractors=refs,
                                 settings=settings, carried=carried, pool=pool,
                                 duplicate_message=previous.duplicate_message
                                 if previous is not None else None,
                                 carried_checked=previous.secrets_checked
                                 if previous is not None else None)
        made = PreviousExtraction(version_id, hashes, result.outcomes, extractors, settings,
                                  result.duplicate_message, result.secrets_checked)
        extraction = self.store.record_extraction(repo_id, version_id, result.graphs,
                                                  result.errors, file_count=result.files,
                                                  file_hashes=hashes)
        self._previous[repo_id] = made
        carryover.save(workspace.cache.root, repo_id, made, previous)  # for the next process
        return extraction

    def _kept(self, repo_id: str, extractors: tuple[str, ...] | None,
              settings: WorkerSettings) -> PreviousExtraction | None:
        """What a former process extracted last, when its graphs are in this graph store."""
        kept = carryover.load(self.workspace.cache.root, repo_id, extractors, settings)
        if kept is None or not self.store.is_extracted(repo_id, kept.version_id):
            return None
        return kept

    def check_stability(self, extraction: Extraction) -> tuple[UnstableDag, ...]:
        """The DAGs that this extraction gave a new graph and that keep changing by
        themselves; each is logged as a warning."""
        changed = [r.version.dag_id for r in extraction.results if r.now_latest]
        if not extraction.recorded or not changed:
            return ()
        unstable = tuple(self.store.unstable_dags(extraction.source.repo_id, dag_ids=changed))
        for item in unstable:
            log.warning("%s: %s", extraction.source.repo_id, item.describe())
        return unstable

    def sync(
        self,
        repo_ids: Sequence[str] | None = None,
        *,
        publish: bool = False,
        observer: SyncObserver | None = None,
    ) -> list[RepoOutcome]:
        """Sync, then extract and record every version not extracted yet; with ``publish``,
        tell followers to serve it (only after its graphs are in the database). An extractor
        name no installed plug-in has fails here, before anything is fetched."""
        for repo_id in repo_ids or self.workspace.manifest.ids:
            self.extractors_for(repo_id)
        return self.after_sync(self.workspace.sync(repo_ids, observer=observer),
                               publish=publish)

    def after_sync(self, results: Sequence[SyncResult], *, publish: bool = False
                   ) -> list[RepoOutcome]:
        """Extract, record (and publish) what a sync gave; for callers that sync themselves."""
        outcomes = []
        for result in results:
            if result.error or result.version_id is None:
                outcomes.append(RepoOutcome(result.repo_id, result.version_id, result,
                                            error=result.error or "nothing synced"))
                continue
            try:
                extraction = self.extract(result.repo_id, result.version_id,
                                          now_current=result.changed)
                unstable = self.check_stability(extraction)
                if publish:
                    if self.workspace.team_cache is not None:
                        # the team cache first: a follower told by the database must find it
                        self.workspace.publish(result.repo_id, result.version_id)
                    self.store.publish(result.repo_id, result.version_id)
            except DagfetchError as exc:
                log.warning("%s: graph extraction failed: %s", result.repo_id, exc,
                            extra={REPORTED: True})
                outcomes.append(RepoOutcome(result.repo_id, result.version_id, result,
                                            error=str(exc)))
                continue
            outcomes.append(RepoOutcome(result.repo_id, result.version_id, result, extraction,
                                        published=publish, unstable=unstable))
        return outcomes

    def watch(
        self,
        *,
        stop: threading.Event | None = None,
        publish: bool = False,
        follow: bool = False,
        observer: SyncObserver | None = None,
        on_outcomes: Callable[[list[RepoOutcome]], None] | None = None,
        max_rounds: int | None = None,
    ) -> None:
        """Keep going until ``stop``: sync and extract each repository every
        ``refresh_interval``, or (``follow``) check for a newly published version as often."""
        stop = stop or threading.Event()
        report = on_outcomes or (lambda _: None)
        if not follow:
            self.workspace.watch(
                stop=stop, observer=observer, max_rounds=max_rounds,
                on_results=lambda results: report(self.after_sync(results, publish=publish)),
            )
            return
        interval = min(spec.refresh_interval for spec in self.workspace.manifest.repositories)
        rounds = 0
        while not stop.is_set():
            report(self.follow())
            rounds += 1
            if max_rounds is not None and rounds >= max_rounds:
                return
            stop.wait(interval)

    # -- every other node ---------------------------------------------------------------------

    def follow(self, repo_ids: Sequence[str] | None = None) -> list[RepoOutcome]:
        """Make each repository's published version current here, whatever the remote holds
        by now. A repository nothing was published for is reported, not guessed."""
        workspace = self.workspace
        team = workspace.team_cache
        outcomes = []
        for repo_id in repo_ids or workspace.manifest.ids:
            try:
                if team is not None and not self.database_named:
                    followed = workspace.follow(repo_id)
                    outcomes.append(RepoOutcome(repo_id, followed.version.version_id,
                                                followed=followed.changed))
                    continue
                wanted = self.store.published(repo_id)
                if wanted is None:
                    outcomes.append(RepoOutcome(repo_id, None, error="no version published yet "
                                                "(the leading node publishes with sync --publish)"))
                    continue
                if workspace.cache.current_id(repo_id) == wanted:
                    outcomes.append(RepoOutcome(repo_id, wanted))
                    continue
                workspace.materialize(repo_id, wanted, make_current=True)
                outcomes.append(RepoOutcome(repo_id, wanted, followed=True))
            except DagfetchError as exc:
                log.warning("%s: follow failed: %s", repo_id, exc, extra={REPORTED: True})
                outcomes.append(RepoOutcome(repo_id, workspace.cache.current_id(repo_id),
                                            error=str(exc)))
        return outcomes

    # -- runs and gc --------------------------------------------------------------------------

    def pin_run(self, run_id: str, dag_id: str, *, number: int | None = None) -> RunPin:
        """Pin a run's graph in the database and its code in the cache."""
        pin = self.store.pin_run(run_id, dag_id, number=number)
        if pin.source is not None and pin.source.repo_id in self.workspace.manifest.ids:
            self.workspace.pin(pin.source.repo_id, pin.source.version_id,
                               holder=run_holder(run_id, dag_id))
        return pin

    def release_run(self, run_id: str, dag_id: str | None = None) -> bool:
        """Mark a finished run released in the store (its graph pin stays as history) and
        let this node's cache evict its code; True when the cache held it for the run."""
        pin = self.store.release_run(run_id, dag_id)
        if pin.source is None or pin.source.repo_id not in self.workspace.manifest.ids:
            return False
        return self.workspace.unpin(pin.source.repo_id, pin.source.version_id,
                                    holder=run_holder(run_id, pin.dag_id))

    def code_path(self, run_id: str, dag_id: str | None = None) -> Path:
        """The folder of the code a run is pinned to (fetched again if it had to be)."""
        pin = self.store.run(run_id, dag_id)
        if pin.source is None:
            raise DagfetchError(f"run {run_id!r} is not pinned to a source version")
        return self.workspace.path(pin.source.repo_id, pin.source.version_id)

    def gc(
        self, *, keep_graphs: int = 5, keep_sources: int = DEFAULT_KEEP_SOURCES,
        dry_run: bool = False,
    ) -> tuple[GcReport, GcResult]:
        """Cache gc (pinned code stays), then graph gc (pinned graphs stay), which keeps the
        import errors and links of every version the cache still keeps."""
        report = self.workspace.gc(dry_run=dry_run)
        if self.workspace.team_cache is not None:
            self.workspace.team_gc(self.pinned_sources(), dry_run=dry_run)
        return report, self.store.gc(keep_graphs, keep_sources=keep_sources,
                                     kept_sources=self.kept_sources(), dry_run=dry_run)

    def pinned_sources(self) -> dict[str, set[str]]:
        """Per repository, the versions runs not yet released are pinned to (in the
        database): the team cache's gc keeps them."""
        pinned: dict[str, set[str]] = {}
        for pin in self.store.runs():
            if pin.source is not None and pin.released_at is None:
                pinned.setdefault(pin.source.repo_id, set()).add(pin.source.version_id)
        return pinned

    def kept_sources(self) -> dict[str, set[str]]:
        """Per repository of the manifest, the versions this cache still keeps."""
        return self.kept_by(self.workspace)

    @staticmethod
    def kept_by(workspace: Workspace) -> dict[str, set[str]]:
        """Per repository of ``workspace``'s manifest, the versions its cache still keeps
        (not evicted): graph gc keeps their import errors and source links."""
        return {repo_id: {entry.version.version_id for entry in workspace.versions(repo_id)
                          if entry.present}
                for repo_id in workspace.manifest.ids}
