"""The web server's manifest settings, declared with :mod:`dagfetch.options`::

    [web]
    auth_conn_id = "dagfetch_web"     # optional: bearer tokens for every page and answer
    hook_delay = 2.0                  # seconds: a burst of pushes within it causes one sync

    [dag_repositories.etl.web]
    hook_conn_id = "etl_webhook"      # the secret POST /api/hooks/etl is signed with

The manifest keeps these tables as it read them; this module checks them, so every error
names its field (``dag_repositories.etl.web.hook_conn_id: ...``), and resolves the secrets
they name through the workspace's connections. A connection gives its secret as its
``password`` (``DAGFETCH_CONN_ETL_WEBHOOK='{"password": "..."}'``); an auth connection may
list more tokens under ``extra.tokens`` (so a token can be rotated without downtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from dagfetch.connections import Connection, ConnectionResolver, Secret
from dagfetch.errors import ConfigError, ManifestError
from dagfetch.manifest import CONN_ID, Manifest, RepositorySpec
from dagfetch.options import option, parse_options

DEFAULT_HOOK_DELAY = 2.0
Settings = TypeVar("Settings")


@attrs.frozen
class WebSettings:
    """The top-level ``[web]`` table."""

    auth_conn_id: str | None = option(
        None, help="connection whose password (and extra.tokens) are the accepted bearer "
        "tokens; unset: no authentication")
    hook_delay: float = option(
        DEFAULT_HOOK_DELAY, ge=0, help="seconds a hook waits for more pushes before its sync "
        "starts (a burst of pushes causes one sync)")


@attrs.frozen
class RepositoryWebSettings:
    """A repository's ``web`` table."""

    hook_conn_id: str | None = option(
        None, help="connection whose password is the secret of POST /api/hooks/<id>; unset: "
        "the hook refuses every request")


def web_settings(manifest: Manifest) -> WebSettings:
    settings = _parse(WebSettings, manifest.web, "web", manifest)
    _check_conn_id(settings.auth_conn_id, "web.auth_conn_id", manifest)
    return settings


def repository_web_settings(spec: RepositorySpec, manifest: Manifest) -> RepositoryWebSettings:
    settings = _parse(RepositoryWebSettings, spec.web, f"{spec.field}.web", manifest)
    _check_conn_id(settings.hook_conn_id, f"{spec.field}.web.hook_conn_id", manifest)
    return settings


def _parse(cls: type[Settings], table: Mapping[str, Any], field: str,
           manifest: Manifest) -> Settings:
    """``parse_options``, its errors naming the manifest file as the manifest's own do."""
    try:
        return parse_options(cls, table, field=field)
    except ManifestError as exc:
        raise ManifestError(exc.field, exc.problem, source=manifest.source) from None


def _check_conn_id(conn_id: str | None, field: str, manifest: Manifest) -> None:
    if conn_id is not None and not CONN_ID.match(conn_id):
        raise ManifestError(field, "must be a connection id of letters, digits, '_', '-', '.'",
                            source=manifest.source)


def connection_secrets(connection: Connection) -> list[Secret]:
    """The secrets a connection gives the web server: its password, then ``extra.tokens``."""
    found = [connection.password] if connection.password is not None else []
    tokens = connection.extra.get("tokens") or []
    if isinstance(tokens, Secret):  # one token written as a string
        tokens = [tokens]
    if not isinstance(tokens, list):
        raise ConfigError(f"connection {connection.conn_id!r}: extra.tokens must be a list")
    found += [token for token in tokens if isinstance(token, Secret)]
    return found


def resolve_secrets(resolver: ConnectionResolver, conn_id: str, field: str,
                    source: str | None) -> list[Secret]:
    """The secrets of connection ``conn_id`` (named by manifest field ``field``); a
    connection that cannot be resolved, or that holds none, is an error naming the field."""
    try:
        secrets = connection_secrets(resolver.resolve(conn_id))
    except ConfigError as exc:
        raise ManifestError(field, str(exc), source=source) from None
    if not secrets:
        raise ManifestError(field, f"connection {conn_id!r} has no password (the secret)",
                            source=source)
    return secrets


def hook_conn_ids(manifest: Manifest) -> Mapping[str, str]:
    """Repository id -> the ``hook_conn_id`` configured for it (repositories with one)."""
    found = {}
    for spec in manifest.repositories:
        conn_id = repository_web_settings(spec, manifest).hook_conn_id
        if conn_id is not None:
            found[spec.id] = conn_id
    return found
