"""Reading a manifest file and validating it, top-level table by table."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagfetch.errors import ManifestError, UnsafePathError
from dagfetch.manifest.fields import (
    REPO_ID,
    extractor_names,
    globs,
    limits_table,
    parse_duration,
    parse_team_cache,
    resolve_sqlite,
    table,
    url_and_conn_id,
)
from dagfetch.manifest.model import (
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_REFRESH_INTERVAL,
    Manifest,
    RepositorySpec,
)
from dagfetch.manifest.urls import Fail, resolve_path
from dagfetch.options import unknown_key
from dagfetch.paths import safe_relpath

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
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                "", f"invalid JSON at line {exc.lineno}: {exc.msg}", source=source
            ) from None
        return parse_manifest(data, base_dir=path.parent, source=source)
    if sys.version_info >= (3, 11):  # imported here: a JSON manifest does not need it
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
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
        connections_path: Path | None = resolve_path(Path(connections_file), base_dir)
    else:
        connections_path = None

    database = data.get("database")
    if database is not None and not isinstance(database, str):
        raise fail("database", "must be a SQLAlchemy URL string")
    if database is not None:
        database = resolve_sqlite(database, base_dir)

    web = table(data.get("web", {}), "web", fail)
    team_cache = parse_team_cache(data.get("team_cache"), base_dir, fail)
    extractors = extractor_names(data.get("extractors", []), "extractors", fail)
    extract = table(data.get("extract", {}), "extract", fail)
    return Manifest(
        tuple(repos), dict(providers), connections_path, database, source, web, team_cache,
        extractors,
        extract,
    )


def _parse_repo(
    repo_id: str, entry: Any, field: str, base_dir: Path | None, fail: Fail
) -> RepositorySpec:
    if not isinstance(entry, Mapping):
        raise fail(field, "must be a table with at least a 'url'")
    unknown = sorted(set(entry) - _REPO_KEYS)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", unknown_key(unknown[0], sorted(_REPO_KEYS)))

    url, conn_id = url_and_conn_id(entry, field, base_dir, fail, "give the repository's URL")

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

    include = globs(entry.get("include", []), f"{field}.include", fail)
    exclude = globs(entry.get("exclude", []), f"{field}.exclude", fail)

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
        web=table(entry.get("web", {}), f"{field}.web", fail),
        limits=limits_table(entry.get("limits"), f"{field}.limits", fail),
        extractors=extractor_names(entry.get("extractors", []), f"{field}.extractors", fail),
    )
