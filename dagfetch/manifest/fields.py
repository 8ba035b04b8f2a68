"""The parsers of the manifest's fields and smaller tables, each naming its dotted field in
its errors: ids, durations, globs, extractor names, the ``limits`` and ``team_cache`` tables,
a repository's or the team cache's ``url`` and ``conn_id``, the SQLite ``database`` path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagfetch.errors import ManifestError
from dagfetch.limits import Limits, parse_limits
from dagfetch.manifest.model import TeamCacheSpec
from dagfetch.manifest.urls import Fail, check_url, resolve_path
from dagfetch.options import unknown_key

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CONN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TEAM_CACHE_KEYS = {"url", "conn_id"}


def parse_team_cache(entry: Any, base_dir: Path | None, fail: Fail) -> TeamCacheSpec | None:
    if entry is None:
        return None
    field = TeamCacheSpec.field
    if not isinstance(entry, Mapping):
        raise fail(field, 'must be a table like {url = "s3://bucket/prefix", conn_id = "..."}')
    unknown = sorted(set(entry) - _TEAM_CACHE_KEYS)
    if unknown:
        raise fail(f"{field}.{unknown[0]}", unknown_key(unknown[0], sorted(_TEAM_CACHE_KEYS)))
    url, conn_id = url_and_conn_id(entry, field, base_dir, fail,
                                    "give an fsspec URL dagfetch can write")
    return TeamCacheSpec(url.rstrip("/"), conn_id)


def url_and_conn_id(
    entry: Mapping[str, Any], field: str, base_dir: Path | None, fail: Fail, what: str
) -> tuple[str, str | None]:
    """The ``url`` (checked, local paths made ``file://`` URLs) and ``conn_id`` of a table."""
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise fail(f"{field}.url", f"missing or empty; {what}")
    url = check_url(url.strip(), f"{field}.url", base_dir, fail)
    conn_id = entry.get("conn_id")
    if conn_id is not None and (not isinstance(conn_id, str) or not CONN_ID.match(conn_id)):
        raise fail(f"{field}.conn_id", "must be a connection id of letters, digits, '_', '-', '.'")
    return url, conn_id


# sqlite:///relative/path (three slashes and no fourth): SQLAlchemy would open it against the
# working directory; the manifest's other paths resolve against the manifest's folder
_RELATIVE_SQLITE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)([^?]+)(\?.*)?$")


def resolve_sqlite(url: str, base_dir: Path | None) -> str:
    """A relative SQLite ``database`` made absolute against ``base_dir``; any other URL as
    given (parsed here by pattern, so reading a manifest never imports SQLAlchemy)."""
    match = _RELATIVE_SQLITE.match(url)
    if match is None or base_dir is None or match.group(2) == ":memory:":
        return url
    prefix, path, query = match.groups()
    return f"{prefix}{resolve_path(Path(path), base_dir)}{query or ''}"


def limits_table(value: Any, field: str, fail: Fail) -> Limits:
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


def table(value: Any, field: str, fail: Fail) -> dict[str, Any]:
    """A table whose keys another module checks (``web``: :mod:`dagfetch.web.settings`)."""
    if not isinstance(value, Mapping):
        raise fail(field, "must be a table")
    return dict(value)


def extractor_names(value: Any, field: str, fail: Fail) -> tuple[str, ...]:
    """A list of graph extractor names; whether each is installed is checked where graphs
    are extracted (:class:`dagfetch.graphs.pipeline.GraphPipeline`), naming this field."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(field, 'must be a list of graph extractor names, like ["airflow"]')
    if len(set(value)) != len(value):
        raise fail(field, "names an extractor twice")
    return tuple(v.strip() for v in value)


def globs(value: Any, field: str, fail: Fail) -> tuple[str, ...]:
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
