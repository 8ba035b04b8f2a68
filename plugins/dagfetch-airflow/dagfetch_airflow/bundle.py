"""``DagfetchBundle``: an Airflow 3 DAG bundle served from the dagfetch cache.

Configured in ``[dag_processor] dag_bundle_config_list`` like any bundle::

    [{"name": "analytics", "classpath": "dagfetch_airflow.DagfetchBundle",
      "kwargs": {"url": "s3://dags-bucket/analytics", "conn_id": "aws_dags"}}]

The kwargs mirror a manifest entry (``url``, ``conn_id``, ``ref``, ``subdir``, ``include``,
``exclude``, ``options``, ``keep_versions``) and are checked the same way, before anything
is fetched; ``cache_root`` defaults to dagfetch's cache folder (``$DAGFETCH_HOME``), so every
Airflow process of the machine (DAG processor, workers, triggerer) shares one cache and the
bundle name is the repository id there.

- ``refresh()`` is one dagfetch sync: only changed files are downloaded, the new version is
  published by one rename and ``current`` switches; a tree another process reads is never
  rewritten. Syncs of one repository hold the cache's lock for it, so N processes refreshing
  at once cost one download (the others find the version already there).
- ``get_current_version()`` is the dagfetch version id (a git commit, or a content version
  for object stores, which Airflow's own object-store bundles cannot pin), so every backend
  supports versioning.
- A bundle constructed with ``version=V`` serves exactly V's tree: from the cache, else
  fetched again when the backend keeps history, else a clear error. While such a bundle is
  initialized, V is pinned in the dagfetch cache (holder ``airflow-<bundle>-<host>-<pid>``),
  so gc never removes code under a running task; the pin goes with :meth:`release`, the
  bundle object or the process. Pins of processes that died are dropped at the next refresh.

With a team cache (kwargs ``team_cache = {"url": ..., "conn_id": ...}``, as in a manifest, or
a manifest named by ``manifest`` that has one), the bundle *follows*: ``initialize()`` and
``refresh()`` make the published version current (the database's when ``database`` is named,
else the team cache's pointer), fetched from the team cache only, and a bundle pinned to
``version=V`` fetches V from the team cache when this machine's cache lacks it, for every
backend (plain buckets included). The origin is never contacted unless ``origin_fallback`` is
true. ``team_role = "lead"`` makes the bundle the leading node instead: ``refresh()`` syncs
from the origin and uploads the new version to the team cache.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.dag_processing.bundles.base import BaseDagBundle

from dagfetch.cache import VersionCache
from dagfetch.errors import ConfigError, DagfetchError, ManifestError, VersionUnavailableError
from dagfetch.manifest import Manifest, load_manifest, parse_manifest
from dagfetch.workspace import Workspace

try:  # Airflow 3.2+: a version with structured data; earlier 3.x releases take a string
    from airflow.dag_processing.bundles import base as _base

    _BUNDLE_VERSION: Any = _base.BundleVersion
except AttributeError:  # pragma: no cover - older Airflow 3 releases
    _BUNDLE_VERSION = None

_HOLDER_PREFIX = "airflow-"
_serial = itertools.count(1)
#: kwargs that describe the repository; with ``manifest`` the manifest's entry says them
_ENTRY_KWARGS = ("url", "conn_id", "ref", "subdir", "include", "exclude", "options",
                 "keep_versions", "team_cache", "database")
_ROLES = ("follow", "lead")


class DagfetchBundleError(DagfetchError):
    """A DagfetchBundle cannot serve what it was asked for; the message says which bundle."""


def _holder(bundle: str, serial: int) -> str:
    """Pin holder of one bundle object: ``airflow-<bundle>-<host>-<pid>-<serial>``."""
    return f"{_HOLDER_PREFIX}{bundle}-{socket.gethostname()}-{os.getpid()}-{serial}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _release_pin(cache: VersionCache, repo_id: str, version_id: str, holder: str) -> None:
    with contextlib.suppress(DagfetchError, OSError):
        cache.unpin(repo_id, version_id, holder)


class DagfetchBundle(BaseDagBundle):
    """A DAG bundle whose files come from a dagfetch repository (see the module docstring)."""

    supports_versioning = True

    def __init__(
        self,
        *,
        url: str | None = None,
        conn_id: str | None = None,
        ref: str | None = None,
        subdir: str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        keep_versions: int | None = None,
        cache_root: str | None = None,
        team_cache: dict[str, Any] | None = None,
        database: str | None = None,
        manifest: str | None = None,
        repo_id: str | None = None,
        team_role: str = "follow",
        origin_fallback: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._where = f"dag bundle {self.name!r}"
        given = {"url": url, "conn_id": conn_id, "ref": ref, "subdir": subdir,
                 "include": list(include) or None, "exclude": list(exclude) or None,
                 "options": options, "keep_versions": keep_versions,
                 "team_cache": team_cache, "database": database}
        if team_role not in _ROLES:
            raise DagfetchBundleError(f"{self._where}: kwargs.team_role: {team_role!r} is not "
                                      f"one of {', '.join(map(repr, _ROLES))}")
        if manifest is not None:
            parsed = self._from_manifest(manifest, repo_id or self.name, given)
        else:
            parsed = self._from_kwargs(repo_id or self.name, given)
        if team_role == "lead" and parsed.team_cache is None:
            raise DagfetchBundleError(f"{self._where}: kwargs.team_role: 'lead' uploads to a "
                                      "team cache; give kwargs.team_cache (or one in the manifest)")
        #: the repository id inside the dagfetch cache (``repo_id``, default the bundle name)
        self.repo_id = repo_id or self.name
        self.workspace = Workspace(parsed, cache_root=cache_root,
                                   origin_fallback=bool(origin_fallback))
        #: follow the team cache (the manifest or kwargs have one, and this is no leader)
        self.following = parsed.team_cache is not None and team_role == "follow"
        self.leading = parsed.team_cache is not None and team_role == "lead"
        self._serial = next(_serial)
        self._pinned: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _from_kwargs(self, repo_id: str, given: dict[str, Any]) -> Manifest:
        entry = {k: v for k, v in given.items()
                 if v is not None and k not in ("team_cache", "database")}
        data: dict[str, Any] = {"dag_repositories": {repo_id: entry}}
        for key in ("team_cache", "database"):
            if given[key] is not None:
                data[key] = given[key]
        try:
            return parse_manifest(data)
        except ManifestError as exc:
            raise DagfetchBundleError(f"{self._where}: {self._kwarg(exc.field, repo_id)}: "
                                      f"{exc.problem}") from None

    def _from_manifest(self, path: str, repo_id: str, given: dict[str, Any]) -> Manifest:
        clash = next((k for k in _ENTRY_KWARGS if given[k] is not None), None)
        if clash is not None:
            raise DagfetchBundleError(
                f"{self._where}: kwargs.{clash}: give it in the manifest {path} "
                "(kwargs.manifest names the repository's entry, its team_cache and database)")
        try:
            parsed = load_manifest(path)
        except ManifestError as exc:
            raise DagfetchBundleError(f"{self._where}: kwargs.manifest: {exc}") from None
        if repo_id not in parsed.ids:
            raise DagfetchBundleError(
                f"{self._where}: kwargs.manifest: {path} has no repository {repo_id!r} "
                "(the bundle name, or kwargs.repo_id)")
        return parsed

    @staticmethod
    def _kwarg(field: str, repo_id: str) -> str:
        """The kwarg a manifest field came from: ``dag_repositories.<id>.x`` is ``kwargs.x``."""
        field = field.removeprefix(f"dag_repositories.{repo_id}").lstrip(".")
        return f"kwargs{'.' + field if field else ''}"

    # -- what Airflow asks ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The folder of the version served: ``version`` if given, else the current one."""
        try:
            return self.workspace.cache.path(self.repo_id, self.version)
        except LookupError:
            # not initialized yet, or gc took the version: the folder it will be in
            return self.workspace.cache.layout.version(self.repo_id, self.version or "current")

    def get_current_version(self) -> Any:
        version = self.version or self.workspace.cache.current_id(self.repo_id)
        if version is None:
            return None
        return _BUNDLE_VERSION(version=version) if _BUNDLE_VERSION is not None else version

    def initialize(self) -> None:
        with self._errors("initializing"):
            if self.version is not None:
                # from the cache, else the team cache (when there is one), else the origin
                self.workspace.pin(self.repo_id, self.version, self._holder())
                self._hold(self.version)
            elif self.workspace.cache.current_id(self.repo_id) is None:
                self._update()
        super().initialize()

    def refresh(self) -> None:
        if self.version is not None:
            raise DagfetchBundleError(f"{self._where}: serves version {self.version} only; "
                                      "a bundle pinned to a version is never refreshed")
        with self._errors("refreshing"):
            self._update()
            self.drop_stale_pins()

    def _update(self) -> None:
        """One step of this bundle's role: follow the published version, or sync (and, as
        the leading node, upload what was synced)."""
        if self.following:
            self.follow()
            return
        self.workspace.sync_one(self.repo_id)
        if self.leading:
            self.workspace.publish(self.repo_id)

    def follow(self) -> str:
        """Make the published version current here, from the team cache; its id. The
        database's published version when ``database`` is named, else the team cache's
        pointer (Airflow 3 workers have no database access)."""
        workspace = self.workspace
        database = workspace.manifest.database
        if database is None:
            return workspace.follow(self.repo_id).version.version_id
        from dagfetch.graphs.store import GraphStore  # only with a database: SQLAlchemy

        wanted = GraphStore.for_cache(workspace.cache.root, database).published(self.repo_id)
        if wanted is None:
            raise VersionUnavailableError(
                f"{self.repo_id}: no version published in the database yet (the leading "
                "node publishes with `dagfetch sync --extract --publish`)")
        return workspace.materialize(self.repo_id, wanted, make_current=True).version_id

    # -- pins ------------------------------------------------------------------------------

    def release(self) -> None:
        """Unpin the version this bundle serves (a task on it has ended)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._pinned = None

    def drop_stale_pins(self) -> list[str]:
        """Remove pins that Airflow processes of this host held and left behind by dying."""
        prefix = f"{_HOLDER_PREFIX}{self.name}-{socket.gethostname()}-"
        dropped = []
        for version_id, holders in self.workspace.cache.pins(self.repo_id).items():
            for holder in holders:
                pid = holder.removeprefix(prefix).split("-")[0]
                if holder.startswith(prefix) and pid.isdigit() and not _process_alive(int(pid)):
                    _release_pin(self.workspace.cache, self.repo_id, version_id, holder)
                    dropped.append(holder)
        return dropped

    def _holder(self) -> str:
        return _holder(self.name, self._serial)

    def _hold(self, version_id: str) -> None:
        if self._pinned == version_id:
            return
        self.release()
        self._pinned = version_id
        self._finalizer = weakref.finalize(self, _release_pin, self.workspace.cache,
                                           self.repo_id, version_id, self._holder())
        self._finalizer.atexit = True

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Any:
        try:
            yield
        except DagfetchBundleError:
            raise
        except (DagfetchError, ConfigError) as exc:
            raise DagfetchBundleError(f"{self._where}: {doing} failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"DagfetchBundle(name={self.name!r}, version={self.version!r})"

