"""The repositories manifest: which remote repositories to fetch, and how.

JSON or TOML, one top-level table ``dag_repositories`` keyed by repository id::

    [dag_repositories.repo1]
    url = "s3://my-bucket/dags"
    conn_id = "aws_default"

Validation is strict and happens before anything is fetched: every error names the dotted
path of the offending field, e.g. ``dag_repositories.repo2.url: ...``.

A URL written without ``scheme://`` is a local path, unless a backend's URL form (entry-point
group ``dagfetch.url_forms``, see :data:`dagfetch.protocol.UrlForm`) recognises it: git's
``user@host:path`` is one. Forms are read on the first such URL; the URL stays as written.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from dagfetch._entrypoints import distribution_of, entry_points
from dagfetch.errors import ConfigError, ManifestError, UnsafePathError
from dagfetch.limits import DEFAULT_LIMITS, Limits, parse_limits
from dagfetch.options import unknown_key
from dagfetch.paths import safe_relpath
from dagfetch.protocol import URL_FORMS_GROUP, UrlForm
from dagfetch.redact import CHAIN_SEPARATOR, URL_ARGUMENT_SCHEMES, masker

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CONN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

DEFAULT_REFRESH_INTERVAL = 60.0
DEFAULT_KEEP_VERSIONS = 5

_REPO_KEYS = {
    "url",
    "conn_id",
    "ref",
    "subdir",
    "include",
    "exclude",
    "refresh_interval",
    "keep_versions",
    "immutable",
    "options",
    "web",
    "limits",
    "extractors",
}
_TOP_KEYS = {
    "dag_repositories", "scheme_providers", "connections_file", "database", "web", "team_cache",
    "extractors",
    "extract",
}
_TEAM_CACHE_KEYS = {"url", "conn_id"}


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


@attrs.frozen
class NamedForm:
    """A URL form and the entry point that offered it."""

    name: str
    distribution: str
    form: UrlForm = attrs.field(eq=False, repr=False)

    def describe(self) -> str:
        return f"{self.distribution} ({self.name})"


_forms: tuple[NamedForm, ...] | None = None
_forms_lock = threading.Lock()


def url_forms(*, reload: bool = False) -> tuple[NamedForm, ...]:
    """The URL forms installed plugins offer, loaded once per process (``reload`` reads the
    entry points again, for a plugin installed since)."""
    global _forms
    with _forms_lock:
        if _forms is None or reload:
            loaded = []
            for ep in sorted(entry_points(URL_FORMS_GROUP), key=lambda e: e.name):
                dist, version = distribution_of(ep)
                try:
                    form = ep.load()
                except Exception as exc:
                    raise ConfigError(
                        f"URL form {ep.name!r} of {dist} {version} failed to load "
                        f"({type(exc).__name__}: {exc}); reinstall {dist}"
                    ) from exc
                if not callable(form):
                    raise ConfigError(f"URL form {ep.name!r} of {dist} {version} is not callable")
                loaded.append(NamedForm(ep.name, dist, form))
            _forms = tuple(loaded)
        return _forms


def _scheme_by_form(url: str) -> str | None:
    """The scheme the URL forms give ``url`` (written without ``scheme://``), if any."""
    claims: dict[str, list[str]] = {}
    for named in url_forms():
        scheme = named.form(url)
        if scheme is None:
            continue
        if not isinstance(scheme, str) or not SCHEME.match(scheme.lower()):
            raise ConfigError(f"URL form {named.describe()} returned {scheme!r}, not a scheme")
        claims.setdefault(scheme.lower(), []).append(named.describe())
    if len(claims) > 1:
        said = "; ".join(f"{', '.join(who)} say {scheme}" for scheme, who in claims.items())
        raise ConfigError(f"URL forms disagree about {url!r}: {said}; write it with scheme://")
    return next(iter(claims), None)


def url_scheme(url: str) -> str:
    """The URL's scheme. One written without ``scheme://`` gets the scheme a URL form gives it
    (``git@host:org/repo.git`` is ``ssh``), else it is a plain path: ``file``. A chained
    fsspec URL (``simplecache::s3://bucket/dags``) has the scheme of its last link, the
    store it reads: the backend serving that scheme opens the whole chain."""
    if CHAIN_SEPARATOR in url:
        url = url.rsplit(CHAIN_SEPARATOR, 1)[1]
    if "://" not in url:
        return _scheme_by_form(url) or "file"
    return url.split("://", 1)[0].lower()


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file (``.toml`` or ``.json``)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError("", "manifest file not found", source=source) from None
    except OSError as exc:
        raise ManifestError("", f"cannot read manifest: {exc.strerror}", source=source) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            "", f"invalid JSON at line {exc.lineno}: {exc.msg}", source=source
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError("", f"invalid TOML: {exc}", source=source) from None
    return parse_manifest(data, base_dir=path.parent, source=source)


def parse_manifest(
    data: Any, *, base_dir: Path | None = None, source: str | None = None
) -> Manifest:
    """Validate a decoded manifest; relative ``file`` paths resolve against ``base_dir``."""

    def fail(field: str, problem: str) -> ManifestError:
        return ManifestError(field, problem, source=source)

    if not isinstance(data, Mapping):
        raise fail("", "the manifest must be a table/object at the top level")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], unknown_key(unknown[0], sorted(_TOP_KEYS)))
    repos_data = data.get("dag_repositories")
    if repos_data is None:
        raise fail("dag_repositories", "missing; list at least one repository")
    if not isinstance(repos_data, Mapping):
        raise fail("dag_repositories", "must be a table keyed by repository id")

    repos: list[RepositorySpec] = []
    seen: dict[str, str] = {}
    for repo_id, entry in repos_data.items():
        field = f"dag_repositories.{repo_id}"
        if not isinstance(repo_id, str) or not REPO_ID.match(repo_id) or repo_id.endswith("."):
            raise fail(
                field,
                "repository ids become folder names: use letters, digits, '_', "
                "'-' and '.', starting with a letter or digit, at most 100 chars",
            )
        folded = repo_id.lower()
        if folded in seen:
            raise fail(field, f"clashes with {seen[folded]!r} on case-insensitive file systems")
        seen[folded] = repo_id
        repos.append(_parse_repo(repo_id, entry, field, base_dir, fail))
    if not repos:
        raise fail("dag_repositories", "is empty; list at least one repository")

    providers = data.get("scheme_providers", {})
    if not isinstance(providers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in providers.items()
    ):
        raise fail("scheme_providers", "must map URL schemes to distribution names")

    connections_file = data.get("connections_file")
    if connections_file is not None:
        if not isinstance(connections_file, str):
            raise fail("connections_file", "must be a path string")
        connections_path: Path | None = _resolve(Path(connections_file), base_dir)
    else:
        connections_path = None

    database = data.get("database")
    if database is not None and not isinstance(database, str):
        raise fail("database", "must be a SQLAlchemy URL string")
    if database is not None:
        database = _resolve_sqlite(database, base_dir)

    web = _table(data.get("web", {}), "web", fail)
    team_cache = _parse_team_cache(data.get("team_cache"), base_dir, fail)
    extractors = _names(data.get("extractors", []), "extractors", fail)
    extract = _table(data.get("extract", {}), "extract", fail)
    return Manifest(
        tuple(repos), dict(providers), connections_path, database, source, web, team_cache,
        extractors,
        extract,
    )


def _parse_team_cache(entry: Any, base_dir: Path | None, fail: Any) -> TeamCacheSpec | None:
    if entry is None:
        return None
    field = TeamCacheSpec.field
    if not isinstance(entry, Mapping):
        raise fail(field, 'must be a table like {url = "s3://bucket/prefix", conn_id = "..."}')
    unknown = sorted(set(entry) - _TEAM_CACHE_KEYS)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", unknown_key(unknown[0], sorted(_TEAM_CACHE_KEYS)))
    url, conn_id = _url_and_conn_id(entry, field, base_dir, fail,
                                    "give an fsspec URL dagfetch can write")
    return TeamCacheSpec(url.rstrip("/"), conn_id)


def _url_and_conn_id(
    entry: Mapping[str, Any], field: str, base_dir: Path | None, fail: Any, what: str
) -> tuple[str, str | None]:
    """The ``url`` (checked, local paths made ``file://`` URLs) and ``conn_id`` of a table."""
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise fail(f"{field}.url", f"missing or empty; {what}")
    url = _check_url(url.strip(), f"{field}.url", base_dir, fail)
    conn_id = entry.get("conn_id")
    if conn_id is not None and (not isinstance(conn_id, str) or not CONN_ID.match(conn_id)):
        raise fail(f"{field}.conn_id", "must be a connection id of letters, digits, '_', '-', '.'")
    return url, conn_id


# sqlite:///relative/path (three slashes and no fourth): SQLAlchemy would open it against the
# working directory; the manifest's other paths resolve against the manifest's folder
_RELATIVE_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)([^?]+)(\?.*)?$")


def _resolve_sqlite(url: str, base_dir: Path | None) -> str:
    """A relative SQLite ``database`` made absolute against ``base_dir``; any other URL as
    given (parsed here by pattern, so reading a manifest never imports SQLAlchemy)."""
    match = _RELATIVE_SQLITE.match(url)
    if match is None or base_dir is None or match.group(2) == ":memory:":
        return url
    prefix, path, query = match.groups()
    return f"{prefix}{_resolve(Path(path), base_dir)}{query or ''}"


def _resolve(path: Path, base_dir: Path | None) -> Path:
    path = path.expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path.resolve()


def _parse_repo(
    repo_id: str, entry: Any, field: str, base_dir: Path | None, fail: Any
) -> RepositorySpec:
    if not isinstance(entry, Mapping):
        raise fail(field, "must be a table with at least a 'url'")
    unknown = sorted(set(entry) - _REPO_KEYS)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", unknown_key(unknown[0], sorted(_REPO_KEYS)))

    url, conn_id = _url_and_conn_id(entry, field, base_dir, fail, "give the repository's URL")

    ref = entry.get("ref")
    if ref is not None and (not isinstance(ref, str) or not ref.strip()):
        raise fail(f"{field}.ref", "must be a non-empty branch, tag or commit")

    subdir = entry.get("subdir")
    if subdir is not None:
        if not isinstance(subdir, str):
            raise fail(f"{field}.subdir", "must be a relative path string")
        try:
            subdir = safe_relpath(subdir)
        except UnsafePathError as exc:
            raise fail(f"{field}.subdir", str(exc)) from None

    include = _globs(entry.get("include", []), f"{field}.include", fail)
    exclude = _globs(entry.get("exclude", []), f"{field}.exclude", fail)

    refresh = entry.get("refresh_interval", DEFAULT_REFRESH_INTERVAL)
    refresh_interval = parse_duration(refresh)
    if refresh_interval is None or refresh_interval <= 0:
        raise fail(
            f"{field}.refresh_interval",
            f"{refresh!r} is not a positive duration (seconds, or like '30s', '5m', '1h')",
        )

    keep = entry.get("keep_versions", DEFAULT_KEEP_VERSIONS)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise fail(f"{field}.keep_versions", f"{keep!r} is not a whole number >= 1")

    immutable = entry.get("immutable", False)
    if not isinstance(immutable, bool):
        raise fail(f"{field}.immutable", "must be true or false")

    options = entry.get("options", {})
    if not isinstance(options, Mapping):
        raise fail(f"{field}.options", "must be a table of backend options")

    return RepositorySpec(
        id=repo_id,
        url=url,
        conn_id=conn_id,
        ref=ref,
        subdir=subdir,
        include=include,
        exclude=exclude,
        refresh_interval=refresh_interval,
        keep_versions=keep,
        immutable=immutable,
        options=dict(options),
        web=_table(entry.get("web", {}), f"{field}.web", fail),
        limits=_limits(entry.get("limits"), f"{field}.limits", fail),
        extractors=_names(entry.get("extractors", []), f"{field}.extractors", fail),
    )


def _limits(value: Any, field: str, fail: Any) -> Limits:
    """The ``limits`` table; timeouts may be durations (``"90s"``, ``"2h"``)."""
    if isinstance(value, Mapping):
        value = {
            key: (parse_duration(given) if key.endswith("_timeout") and isinstance(given, str)
                  and parse_duration(given) is not None else given)
            for key, given in value.items()
        }
    try:
        return parse_limits(value, field=field)
    except ManifestError as exc:
        raise fail(exc.field, exc.problem) from None


def _check_url(url: str, field: str, base_dir: Path | None, fail: Any) -> str:
    if CHAIN_SEPARATOR in url:
        return _check_chain(url, field, base_dir, fail)
    if "://" not in url:
        try:
            by_form = _scheme_by_form(url)
        except ConfigError as exc:
            raise fail(field, str(exc)) from exc
        if by_form is not None:
            return url  # a backend's own form (git@host:path): kept as written
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url) and not re.match(r"^[A-Za-z]:[\\/]", url):
            raise fail(field, f"{url!r} is missing '//' after the scheme")
        return "file://" + str(_resolve(Path(url), base_dir))
    scheme, rest = url.split("://", 1)
    if not SCHEME.match(scheme.lower()):
        raise fail(field, f"{scheme!r} is not a valid URL scheme")
    if scheme.lower() == "file" and rest and not rest.startswith("/"):
        return "file://" + str(_resolve(Path(rest), base_dir))
    try:
        password = urlsplit(url).password
    except ValueError as exc:
        raise fail(field, f"not a valid URL: {exc}") from None
    if password and scheme.lower() not in URL_ARGUMENT_SCHEMES:
        masker.add(password)  # a lower library may quote the URL in its own errors
    if not rest:
        raise fail(field, "URL has nothing after the scheme")
    return url


def _check_chain(url: str, field: str, base_dir: Path | None, fail: Any) -> str:
    """A chained fsspec URL: links before the last wrap the store (``simplecache``,
    ``filecache``, or with arguments ``simplecache://::``); the last link is checked as any
    repository URL."""
    *wrappers, store = url.split(CHAIN_SEPARATOR)
    for link in wrappers:
        protocol = link.split("://", 1)[0]
        if not SCHEME.match(protocol.lower()):
            raise fail(field, f"{protocol!r} (a link of the chained URL) is not a valid "
                              "fsspec protocol")
    if not store.strip():
        raise fail(field, "the chained URL ends in '::'; give the store's URL last")
    checked = _check_url(store, field, base_dir, fail)
    return CHAIN_SEPARATOR.join([*wrappers, checked])


def _table(value: Any, field: str, fail: Any) -> dict[str, Any]:
    """A table whose keys another module checks (``web``: :mod:`dagfetch.web.settings`)."""
    if not isinstance(value, Mapping):
        raise fail(field, "must be a table")
    return dict(value)


def _names(value: Any, field: str, fail: Any) -> tuple[str, ...]:
    """A list of graph extractor names; whether each is installed is checked where graphs
    are extracted (:class:`dagfetch.graphs.pipeline.GraphPipeline`), naming this field."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(field, 'must be a list of graph extractor names, like ["airflow"]')
    if len(set(value)) != len(value):
        raise fail(field, "names an extractor twice")
    return tuple(v.strip() for v in value)


def _globs(value: Any, field: str, fail: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(field, "must be a list of glob patterns")
    return tuple(value)


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a string like ``'90'``, ``'30s'``, ``'5m'``, ``'1h'``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None
