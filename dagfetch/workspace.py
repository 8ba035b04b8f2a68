"""The Python API: a manifest plus a cache root, and the jobs a scheduler needs from them.

    ws = dagfetch.Workspace.from_manifest("dagfetch.toml")
    ws.sync()                        # every repository; one failing does not stop the others
    path = ws.path("repo1")          # the current version's folder, resolved once
    ws.pin("repo1", version_id, holder="run-42")
    dags = ws.import_dags("repo1")   # modules of the DAG files, helpers resolved in-version

Everything here is validated before anything is fetched: unknown schemes, missing backend
packages and unresolvable ``conn_id`` values fail with the manifest field that caused them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from dagfetch.cache import VersionCache
from dagfetch.cache.store import VersionEntry
from dagfetch.connections import ConnectionResolver
from dagfetch.defaults import registry_for
from dagfetch.errors import (
    ConfigError,
    DagfetchError,
    ManifestError,
    RegistryError,
    VersionNotFoundError,
    VersionUnavailableError,
)
from dagfetch.manifest import Manifest, RepositorySpec, load_manifest
from dagfetch.models import SyncResult, Version
from dagfetch.protocol import Fetcher, Source
from dagfetch.redact import REPORTED, get_logger, redact_url
from dagfetch.registry import Registry
from dagfetch.sync import Syncer, SyncObserver

if TYPE_CHECKING:  # imported when used: a sync needs none, and the CLI's start-up shows it
    from dagfetch.cache import GcReport
    from dagfetch.cache.audit import VerifyReport
    from dagfetch.diffs import DiffLimits, VersionDiff
    from dagfetch.importing import ImportedVersion
    from dagfetch.team import Followed, TeamCache, TeamGcReport, Uploaded

log = get_logger(__name__)

MANIFEST_NAMES = ("dagfetch.toml", "dagfetch.json")


def find_manifest(path: str | Path | None = None) -> Path:
    """``path``, else ``$DAGFETCH_MANIFEST``, else ``dagfetch.toml``/``.json`` in the cwd."""
    if path is not None:
        return Path(path)
    env = os.environ.get("DAGFETCH_MANIFEST")
    if env:
        return Path(env)
    for name in MANIFEST_NAMES:
        if Path(name).exists():
            return Path(name)
    raise ManifestError(
        "",
        "no manifest: pass --manifest, set DAGFETCH_MANIFEST, or create "
        "dagfetch.toml in the working directory",
    )


@attrs.frozen
class RepoStatus:
    repo_id: str
    url: str
    current: str | None
    versions: int
    last_check_at: str | None
    last_success_at: str | None
    last_change_at: str | None
    last_error: dict[str, str] | None
    #: when the version followed from the team cache was published there (follow mode)
    team_published_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Workspace:
    def __init__(
        self,
        manifest: Manifest,
        *,
        cache_root: str | Path | None = None,
        registry: Registry | None = None,
        connections: ConnectionResolver | None = None,
        origin_fallback: bool = False,
    ) -> None:
        self.manifest = manifest
        self.cache = VersionCache(cache_root)
        self.registry = registry or registry_for(manifest.scheme_providers)
        self.connections = connections or ConnectionResolver(manifest.connections_file)
        self.syncer = Syncer(self.cache)
        #: with a team cache, a version it lacks is fetched from the origin only when true
        self.origin_fallback = origin_fallback
        self._team_cache: TeamCache | None = None

    @property
    def team_cache(self) -> TeamCache | None:
        """The manifest's ``team_cache``, opened on first use (None when there is none)."""
        spec = self.manifest.team_cache
        if spec is None:
            return None
        if self._team_cache is None:
            from dagfetch.team import TeamCache

            self._team_cache = TeamCache.open(spec, self.connections, source=self.manifest.source)
        return self._team_cache

    def _require_team_cache(self) -> TeamCache:
        team = self.team_cache
        if team is None:
            raise ManifestError("team_cache", "not set; add team_cache = {url = \"...\"} to "
                                "the manifest", source=self.manifest.source)
        return team

    @classmethod
    def from_manifest(cls, path: str | Path | None = None, **kwargs: Any) -> Workspace:
        return cls(load_manifest(find_manifest(path)), **kwargs)

    # -- building fetchers -----------------------------------------------------------------

    def source_for(self, spec: RepositorySpec) -> Source:
        connection = None
        if spec.conn_id is not None:
            try:
                connection = self.connections.resolve(spec.conn_id)
            except ConfigError as exc:
                raise ManifestError(
                    f"{spec.field}.conn_id", str(exc), source=self.manifest.source
                ) from None
        return Source(
            repo_id=spec.id,
            url=spec.url,
            connection=connection,
            ref=spec.ref,
            subdir=spec.subdir,
            options=dict(spec.options),
            work_dir=self.cache.layout.work_dir(spec.id),
            limits=spec.limits,
        )

    def fetcher_for(self, spec: RepositorySpec) -> Fetcher:
        """Build the repository's fetcher; errors name the manifest field at fault."""
        try:
            factory = self.registry.resolve(spec.scheme)
        except RegistryError as exc:
            raise ManifestError(f"{spec.field}.url", str(exc), source=self.manifest.source) from exc
        source = self.source_for(spec)
        try:
            return factory(source)
        except (RegistryError, ConfigError) as exc:
            field = getattr(exc, "field", None) or f"{spec.field}.url"
            problem = getattr(exc, "problem", None) or str(exc)
            raise ManifestError(field, problem, source=self.manifest.source) from exc

    def validate(self, repo_ids: Iterable[str] | None = None) -> None:
        """Check every (or the named) repositories can be served, and the team cache opened,
        without fetching anything."""
        for spec in self._specs(repo_ids):
            self.fetcher_for(spec).close()
        _ = self.team_cache  # its conn_id resolves and its file system is installed

    def _specs(self, repo_ids: Iterable[str] | None) -> list[RepositorySpec]:
        if repo_ids is None:
            return list(self.manifest.repositories)
        return [self.manifest.get(r) for r in repo_ids]

    # -- syncing ---------------------------------------------------------------------------

    def sync_one(self, repo_id: str, *, observer: SyncObserver | None = None) -> SyncResult:
        """Sync one repository; raises on failure (the previous version keeps serving)."""
        spec = self.manifest.get(repo_id)
        fetcher = self.fetcher_for(spec)
        try:
            return self.syncer.sync(spec, fetcher, observer=observer)
        finally:
            fetcher.close()

    def sync(
        self, repo_ids: Sequence[str] | None = None, *, observer: SyncObserver | None = None
    ) -> list[SyncResult]:
        """Sync every (or the named) repositories. Each repository's result says how it went:
        one whose fetcher cannot be built (bad configuration) or whose sync fails reports its
        error there and the rest go on. A cache root that cannot be written fails the call."""
        specs = self._specs(repo_ids)
        self.cache.check_writable()
        results = []
        for spec in specs:
            try:
                fetcher = self.fetcher_for(spec)
            except DagfetchError as exc:
                log.warning("%s: cannot be synced: %s", spec.id, exc, extra={REPORTED: True})
                current = self.cache.current_id(spec.id)
                results.append(SyncResult(spec.id, current, False, error=str(exc),
                                          config_error=isinstance(exc, ConfigError)))
                continue
            try:
                results.append(self.syncer.sync(spec, fetcher, observer=observer))
            except DagfetchError as exc:
                log.warning("%s: sync failed: %s", spec.id, exc, extra={REPORTED: True})
                current = self.cache.current_id(spec.id)
                results.append(SyncResult(spec.id, current, False, error=str(exc)))
            finally:
                fetcher.close()
        return results

    def watch(
        self,
        *,
        stop: threading.Event | None = None,
        observer: SyncObserver | None = None,
        on_results: Any = None,
        max_rounds: int | None = None,
    ) -> None:
        """Sync each repository every ``refresh_interval`` until ``stop`` is set."""
        stop = stop or threading.Event()
        due = {spec.id: 0.0 for spec in self.manifest.repositories}
        rounds = 0
        while not stop.is_set():
            now = time.monotonic()
            ready = [r for r, t in due.items() if t <= now]
            if ready:
                results = self.sync(ready, observer=observer)
                if on_results is not None:
                    on_results(results)
                for r in ready:
                    due[r] = time.monotonic() + self.manifest.get(r).refresh_interval
                rounds += 1
                if max_rounds is not None and rounds >= max_rounds:
                    return
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))

    # -- reading ---------------------------------------------------------------------------

    def current(self, repo_id: str) -> Version | None:
        self.manifest.get(repo_id)
        return self.cache.current(repo_id)

    def path(self, repo_id: str, version_id: str | None = None, *, fetch: bool = True) -> Path:
        """The folder of the current or a given version. A given version that is not in the
        cache is fetched again when the backend keeps history (and ``fetch`` is true)."""
        self.manifest.get(repo_id)
        if version_id is None or not fetch:
            return self.cache.path(repo_id, version_id)
        try:
            return self.cache.path(repo_id, version_id)
        except LookupError:
            self.materialize(repo_id, version_id)
            return self.cache.path(repo_id, version_id)

    def materialize(self, repo_id: str, version_id: str, *, make_current: bool = False) -> Version:
        """Make a version present in the cache: from the team cache when the manifest has
        one (the origin only with ``origin_fallback``), else fetched again from the origin by
        its record or its id."""
        spec = self.manifest.get(repo_id)
        team = self.team_cache
        if team is not None:
            try:
                return team.follow(self.cache, repo_id, version_id,
                                   make_current=make_current).version
            except VersionUnavailableError:
                if not self.origin_fallback:
                    raise
                log.info("%s: %s is not in the team cache; fetching it from the origin",
                         repo_id, version_id)
        fetcher = self.fetcher_for(spec)
        try:
            return self.syncer.materialize(spec, fetcher, version_id, make_current=make_current)
        finally:
            fetcher.close()

    # -- the team cache ----------------------------------------------------------------------

    def follow(self, repo_id: str, version_id: str | None = None) -> Followed:
        """Follow mode in one call: make the team cache's published version (or
        ``version_id``, e.g. the database's published one) current here, fetched from the
        team cache only if this cache lacks it. The origin is never contacted."""
        self.manifest.get(repo_id)
        return self._require_team_cache().follow(self.cache, repo_id, version_id)

    def publish(self, repo_id: str, version_id: str | None = None) -> Uploaded:
        """The leading node: upload the current (or a given) version to the team cache and
        move its pointer there, last."""
        self.manifest.get(repo_id)
        team = self._require_team_cache()
        version = (self.cache.current(repo_id) if version_id is None
                   else self.cache.get(repo_id, version_id))
        if version is None:
            raise VersionNotFoundError(f"{repo_id}: nothing synced yet in {self.cache.root}")
        return team.upload(self.cache, version)

    def team_gc(self, pinned: dict[str, set[str]] | None = None, *,
                dry_run: bool = False) -> list[TeamGcReport]:
        """gc of the team cache (the leading node's job): per repository, keep the pointer's
        version, the ``pinned`` ones and the newest ``keep_versions``."""
        team = self._require_team_cache()
        pinned = pinned or {}
        return [team.gc(spec.id, keep_versions=spec.keep_versions,
                        pinned=pinned.get(spec.id, set()), dry_run=dry_run)
                for spec in self.manifest.repositories]

    def versions(self, repo_id: str) -> list[VersionEntry]:
        self.manifest.get(repo_id)
        return self.cache.versions(repo_id)

    def pin(self, repo_id: str, version_id: str, holder: str = "default") -> Path:
        """Keep a version (fetching it first if needed) until ``holder`` unpins it."""
        path = self.path(repo_id, version_id)
        self.cache.pin(repo_id, version_id, holder)
        return path

    def unpin(self, repo_id: str, version_id: str, holder: str = "default") -> bool:
        return self.cache.unpin(repo_id, version_id, holder)

    def gc(self, *, dry_run: bool = False, grace_seconds: float | None = None) -> GcReport:
        """Evict versions beyond each repository's ``keep_versions`` (never current or
        pinned ones), drop the trees of kept versions retired more than ``grace_seconds``
        ago (rebuilt locally on use), and remove contents no kept version uses."""
        keep = {spec.id: spec.keep_versions for spec in self.manifest.repositories}
        if grace_seconds is None:
            return self.cache.gc(keep, dry_run=dry_run)
        return self.cache.gc(keep, dry_run=dry_run, grace_seconds=grace_seconds)

    def verify(self, repo_id: str | None = None, *, repair: bool = False) -> VerifyReport:
        """Hash every file content of the kept versions (of every repository, or ``repo_id``)
        and report each bad one by repository, version and path. With ``repair``, what is
        bad is removed; the current version is fetched again whole, and every other damaged
        version is evicted, then fetched again when its backend keeps history."""
        specs = self._specs([repo_id] if repo_id is not None else None)
        report = self.cache.audit([s.id for s in specs])
        if not repair or not report.bad:
            return report
        self.cache.drop_bad(report)
        repaired: list[tuple[str, str]] = []
        dropped: list[tuple[str, str]] = []
        for damaged in report.damaged_versions:
            rid, version_id = damaged
            try:
                if version_id == self.cache.current_id(rid):
                    spec = self.manifest.get(rid)
                    fetcher = self.fetcher_for(spec)
                    try:
                        result = self.syncer.sync(spec, fetcher, full=True)
                    finally:
                        fetcher.close()
                    if result.version_id == version_id:
                        repaired.append(damaged)
                        continue
                    log.warning("%s: the remote moved on from %s, now at %s", rid, version_id,
                                result.version_id)
                self.cache.evict(rid, version_id)
                dropped.append(damaged)
                self.materialize(rid, version_id)
                dropped.remove(damaged)
                repaired.append(damaged)
            except DagfetchError as exc:
                log.warning("%s: could not fetch %s again: %s", rid, version_id, exc)
        return attrs.evolve(report, repaired=tuple(repaired), dropped=tuple(dropped))

    def status(self) -> list[RepoStatus]:
        out = []
        for spec in self.manifest.repositories:
            state = self.cache.state(spec.id) if self.cache.layout.meta(spec.id).exists() else {}
            out.append(
                RepoStatus(
                    repo_id=spec.id,
                    url=redact_url(spec.url),
                    current=self.cache.current_id(spec.id),
                    versions=len(self.cache.present_versions(spec.id)),
                    last_check_at=_str(state.get("last_check_at")),
                    last_success_at=_str(state.get("last_success_at")),
                    last_change_at=_str(state.get("last_change_at")),
                    last_error=state.get("last_error"),
                    team_published_at=_str(state.get("team_published_at")),
                )
            )
        return out

    def diff(
        self, repo_id: str, a: str, b: str = "current", *, patch: bool = True,
        limits: DiffLimits | None = None,
    ) -> VersionDiff:
        """Files added, deleted, modified and renamed from version ``a`` to version ``b``
        (ids, unique prefixes or ``current``), from their records; with ``patch``, the
        line diff of text files too, read from the version trees (see :mod:`dagfetch.diffs`)."""
        self.manifest.get(repo_id)
        from dagfetch.diffs import compare_versions

        return compare_versions(self.cache, repo_id, a, b, patch=patch, limits=limits)

    def import_dags(self, repo_id: str, version_id: str | None = None) -> ImportedVersion:
        """Import the DAG files of a version; ``from lib.utils import x`` resolves inside it."""
        from dagfetch.importing import import_version

        return import_version(self.path(repo_id, version_id))


def _str(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)
