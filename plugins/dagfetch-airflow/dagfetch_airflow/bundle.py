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
from dagfetch.errors import ConfigError, DagfetchError, ManifestError
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace

try:  # Airflow 3.2+: a version with structured data; earlier 3.x releases take a string
    from airflow.dag_processing.bundles import base as _base

    _BUNDLE_VERSION: Any = _base.BundleVersion
except AttributeError:  # pragma: no cover - older Airflow 3 releases
    _BUNDLE_VERSION = None

_HOLDER_PREFIX = "airflow-"
_serial = itertools.count(1)


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
        url: str,
        conn_id: str | None = None,
        ref: str | None = None,
        subdir: str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        keep_versions: int | None = None,
        cache_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        entry: dict[str, Any] = {"url": url, "include": list(include), "exclude": list(exclude),
                                 "options": dict(options or {})}
        for key, value in (("conn_id", conn_id), ("ref", ref), ("subdir", subdir),
                           ("keep_versions", keep_versions)):
            if value is not None:
                entry[key] = value
        where = f"dag bundle {self.name!r}"
        try:
            manifest = parse_manifest({"dag_repositories": {self.name: entry}})
        except ManifestError as exc:
            field = exc.field.removeprefix(f"dag_repositories.{self.name}").lstrip(".")
            raise DagfetchBundleError(
                f"{where}: kwargs{'.' + field if field else ''}: {exc.problem}"
            ) from None
        self._where = where
        self.workspace = Workspace(manifest, cache_root=cache_root)
        self._serial = next(_serial)
        self._pinned: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- what Airflow asks ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The folder of the version served: ``version`` if given, else the current one."""
        try:
            return self.workspace.cache.path(self.name, self.version)
        except LookupError:
            # not initialized yet, or gc took the version: the folder it will be in
            return self.workspace.cache.layout.version(self.name, self.version or "current")

    def get_current_version(self) -> Any:
        version = self.version or self.workspace.cache.current_id(self.name)
        if version is None:
            return None
        return _BUNDLE_VERSION(version=version) if _BUNDLE_VERSION is not None else version

    def initialize(self) -> None:
        with self._errors("initializing"):
            if self.version is not None:
                self.workspace.pin(self.name, self.version, self._holder())
                self._hold(self.version)
            elif self.workspace.cache.current_id(self.name) is None:
                self.workspace.sync_one(self.name)
        super().initialize()

    def refresh(self) -> None:
        if self.version is not None:
            raise DagfetchBundleError(f"{self._where}: serves version {self.version} only; "
                                      "a bundle pinned to a version is never refreshed")
        with self._errors("refreshing"):
            self.workspace.sync_one(self.name)
            self.drop_stale_pins()

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
        for version_id, holders in self.workspace.cache.pins(self.name).items():
            for holder in holders:
                pid = holder.removeprefix(prefix).split("-")[0]
                if holder.startswith(prefix) and pid.isdigit() and not _process_alive(int(pid)):
                    _release_pin(self.workspace.cache, self.name, version_id, holder)
                    dropped.append(holder)
        return dropped

    def _holder(self) -> str:
        return _holder(self.name, self._serial)

    def _hold(self, version_id: str) -> None:
        if self._pinned == version_id:
            return
        self.release()
        self._pinned = version_id
        self._finalizer = weakref.finalize(self, _release_pin, self.workspace.cache, self.name,
                                           version_id, self._holder())
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

