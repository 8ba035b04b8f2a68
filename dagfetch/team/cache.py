""":class:`TeamCache`: the team cache of a manifest (``team_cache = {url, conn_id}``), opened
through :mod:`dagfetch.storage` like any repository URL, and the jobs of both roles."""

from __future__ import annotations

from collections.abc import Collection

import attrs

from dagfetch.cache.store import VersionCache
from dagfetch.connections import ConnectionResolver
from dagfetch.errors import ConfigError, ManifestError, VersionUnavailableError
from dagfetch.manifest import TeamCacheSpec
from dagfetch.models import Version
from dagfetch.redact import redact_url
from dagfetch.storage import open_filesystem
from dagfetch.team.documents import Pointer
from dagfetch.team.fetch import Fetched, fetch_version, record_followed
from dagfetch.team.gc import DEFAULT_PACK_GRACE, TeamGcReport, collect
from dagfetch.team.objects import TeamObjects
from dagfetch.team.upload import Uploaded, read_pointer, upload


@attrs.frozen
class Followed:
    """What following did for one repository: the version now current here, when the team
    cache published it (None when the version was asked for by id), and what was fetched
    (None when the local cache had it)."""

    version: Version
    changed: bool
    published_at: str | None = None
    fetched: Fetched | None = None


class TeamCache:
    def __init__(self, objects: TeamObjects) -> None:
        self.objects = objects

    @classmethod
    def open(cls, spec: TeamCacheSpec, connections: ConnectionResolver, *,
             source: str | None = None) -> TeamCache:
        """Open the store behind ``spec``; errors name ``team_cache.url`` / ``.conn_id``."""
        connection = None
        if spec.conn_id is not None:
            try:
                connection = connections.resolve(spec.conn_id)
            except ConfigError as exc:
                raise ManifestError(f"{spec.field}.conn_id", str(exc), source=source) from None
        try:
            store = open_filesystem(spec.url, connection, where=f"{spec.field}.url")
        except ConfigError as exc:
            raise ManifestError(f"{spec.field}.url", str(exc), source=source) from exc
        return cls(TeamObjects(store, spec.url))

    @property
    def url(self) -> str:
        return redact_url(self.objects.url)

    # -- the leading node -------------------------------------------------------------------

    def upload(self, cache: VersionCache, version: Version) -> Uploaded:
        """Upload a version of ``cache`` and move the repository's pointer to it, last."""
        return upload(self.objects, cache, version)

    def gc(self, repo_id: str, *, keep_versions: int, pinned: Collection[str] = (),
           dry_run: bool = False, grace_seconds: float = DEFAULT_PACK_GRACE) -> TeamGcReport:
        """Remove what neither the pointer, a pin, nor the newest ``keep_versions`` need."""
        return collect(self.objects, repo_id, keep_versions=keep_versions, pinned=pinned,
                       dry_run=dry_run, grace_seconds=grace_seconds)

    # -- followers -------------------------------------------------------------------------

    def published(self, repo_id: str) -> Pointer | None:
        """The repository's pointer (one GET), or None when nothing was uploaded."""
        return read_pointer(self.objects, repo_id)

    def follow(self, cache: VersionCache, repo_id: str, version_id: str | None = None, *,
               make_current: bool = True) -> Followed:
        """Make ``version_id`` (default: the pointer's) present in ``cache``, fetched from
        the team cache only when the cache lacks it, and (``make_current``) current."""
        published_at = None
        if version_id is None:
            pointer = self.published(repo_id)
            if pointer is None:
                raise VersionUnavailableError(
                    f"{repo_id}: nothing published in the team cache {self.url} yet "
                    "(the leading node publishes with `dagfetch sync --publish`)")
            version_id, published_at = pointer.version_id, pointer.published_at
        with cache.repo_lock(repo_id):
            found = cache.record(repo_id, version_id)
            fetched = None
            if found is not None and found.present:
                version = cache.get(repo_id, version_id)
            else:
                fetched = fetch_version(self.objects, cache, repo_id, version_id)
                version = fetched.version
            changed = False
            if make_current:
                changed = record_followed(cache, repo_id, version_id, published_at)
        return Followed(version, changed, published_at, fetched)
