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

The package's parts: the value types (:mod:`~dagfetch.manifest.model`), URLs and URL forms
(:mod:`~dagfetch.manifest.urls`), the parsers of fields and small tables
(:mod:`~dagfetch.manifest.fields`), reading and validating a whole manifest
(:mod:`~dagfetch.manifest.parse`).
"""

from __future__ import annotations

from dagfetch.manifest.fields import CONN_ID, REPO_ID, parse_duration
from dagfetch.manifest.model import (
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_REFRESH_INTERVAL,
    Manifest,
    RepositorySpec,
    TeamCacheSpec,
)
from dagfetch.manifest.parse import load_manifest, parse_manifest
from dagfetch.manifest.urls import SCHEME, NamedForm, url_forms, url_scheme

__all__ = [
    "CONN_ID",
    "DEFAULT_KEEP_VERSIONS",
    "DEFAULT_REFRESH_INTERVAL",
    "REPO_ID",
    "SCHEME",
    "Manifest",
    "NamedForm",
    "RepositorySpec",
    "TeamCacheSpec",
    "load_manifest",
    "parse_duration",
    "parse_manifest",
    "url_forms",
    "url_scheme",
]
