"""The manifest's value types: a repository entry, the team cache, the whole manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagfetch.errors import ManifestError
from dagfetch.limits import DEFAULT_LIMITS, Limits
from dagfetch.manifest.urls import url_scheme

DEFAULT_REFRESH_INTERVAL = 60.0
DEFAULT_KEEP_VERSIONS = 5


@attrs.frozen
class RepositorySpec:
    """One entry of ``dag_repositories``."""

    id: str
    url: str
    conn_id: str | None = None
    ref: str | None = None
    subdir: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    immutable: bool = False
    options: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    # the web server's settings of this repository, checked by dagfetch.web.settings
    web: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    limits: Limits = attrs.field(default=DEFAULT_LIMITS, eq=False, hash=False)
    #: graph extractors for this repository's DAG files (names in `dagfetch.extractors`);
    #: empty: the manifest's top-level `extractors`, else the built-in default
    extractors: tuple[str, ...] = ()

    @property
    def scheme(self) -> str:
        return url_scheme(self.url)

    @property
    def field(self) -> str:
        """Dotted manifest path of this entry, for error messages."""
        return f"dag_repositories.{self.id}"


@attrs.frozen
class TeamCacheSpec:
    """``team_cache``: the object store the leading node uploads versions to and followers
    fetch them from (see :mod:`dagfetch.team`)."""

    url: str
    conn_id: str | None = None

    field = "team_cache"


@attrs.frozen
class Manifest:
    repositories: tuple[RepositorySpec, ...]
    scheme_providers: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)
    connections_file: Path | None = None
    database: str | None = None
    source: str | None = None
    # the web server's settings (`[web]`), checked by dagfetch.web.settings
    web: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    team_cache: TeamCacheSpec | None = None
    #: graph extractors of every repository that names none itself (empty: the default)
    extractors: tuple[str, ...] = ()

    def extractors_for(self, repo_id: str) -> tuple[tuple[str, ...], str]:
        """The extractor names a repository's DAG files are parsed with, and the manifest
        field that chose them (empty names: the built-in default)."""
        spec = self.get(repo_id)
        if spec.extractors:
            return spec.extractors, f"{spec.field}.extractors"
        return self.extractors, "extractors"
    # the extraction workers' settings (`[extract]`), checked by dagfetch.graphs.worker.settings
    extract: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)

    def get(self, repo_id: str) -> RepositorySpec:
        for repo in self.repositories:
            if repo.id == repo_id:
                return repo
        known = ", ".join(r.id for r in self.repositories) or "none"
        raise ManifestError(
            "dag_repositories", f"no repository {repo_id!r} (known: {known})", source=self.source
        )

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.repositories]
