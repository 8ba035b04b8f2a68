"""Resolve a manifest's ``conn_id`` to credentials and backend options.

Sources, first hit wins:

1. the environment variable ``DAGFETCH_CONN_<ID>`` (``<ID>`` upper-cased, other characters
   than letters and digits turned into ``_``), holding a connection URI
   (``s3://KEY:SECRET@?region_name=eu-west-1``) or a JSON object;
2. a connections file (TOML or JSON, a table keyed by conn_id) named by the manifest's
   ``connections_file`` or ``DAGFETCH_CONNECTIONS_FILE``;
3. secret backends installed as entry points in the group ``dagfetch.secrets``: each names a
   callable taking the conn_id and returning a URI string, a mapping, a Connection, or None.

A :class:`Connection` never shows its secrets: ``repr`` and ``str`` mask them, and every
secret value is registered with :data:`dagfetch.redact.masker` so it is masked in logs and
error messages too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from dagfetch.errors import ConnectionConfigError
from dagfetch.redact import MASK, masker

SECRETS_GROUP = "dagfetch.secrets"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|key|credential|sas|signature|private)", re.IGNORECASE
)


@attrs.frozen(repr=False)
class Secret:
    """A string that does not show itself. Call :meth:`reveal` at the point of use only."""

    _value: str

    def __attrs_post_init__(self) -> None:
        masker.add(self._value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


@attrs.frozen
class Connection:
    """Credentials and options for one remote. ``extra`` values under secret-looking keys
    (``*secret*``, ``*token*``, ``*key*``, ...) are :class:`Secret`."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: Secret | None = None
    schema: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def revealed_extra(self) -> dict[str, Any]:
        """``extra`` with secrets revealed, for handing to a backend library."""
        revealed: dict[str, Any] = _reveal(dict(self.extra))
        return revealed

    def get(self, key: str, default: Any = None) -> Any:
        value = self.extra.get(key, default)
        return value.reveal() if isinstance(value, Secret) else value


def connection_from_uri(conn_id: str, uri: str) -> Connection:
    """Parse ``type://login:password@host:port/schema?key=value`` (Airflow's connection URI)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ConnectionConfigError(conn_id, f"not a valid connection URI ({exc})") from None
    if not parts.scheme:
        raise ConnectionConfigError(conn_id, "connection URI has no scheme (like 's3://...')")
    extra: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "__extra__":
            try:
                extra.update(json.loads(value))
            except json.JSONDecodeError:
                raise ConnectionConfigError(conn_id, "__extra__ is not valid JSON") from None
        else:
            extra[key] = value
    return _build(
        conn_id,
        {
            "conn_type": parts.scheme.replace("-", "_"),
            "host": unquote(parts.hostname) if parts.hostname else None,
            "port": port,
            "login": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "schema": unquote(parts.path.lstrip("/")) or None,
            "extra": extra,
        },
    )


def connection_from_mapping(conn_id: str, data: Mapping[str, Any]) -> Connection:
    allowed = {"conn_type", "host", "port", "login", "password", "schema", "extra", "uri"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConnectionConfigError(
            conn_id, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    if "uri" in data:
        return connection_from_uri(conn_id, str(data["uri"]))
    extra = data.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            raise ConnectionConfigError(conn_id, "'extra' is not valid JSON") from None
    if not isinstance(extra, Mapping):
        raise ConnectionConfigError(conn_id, "'extra' must be an object")
    port = data.get("port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise ConnectionConfigError(conn_id, "'port' must be a number") from None
    return _build(conn_id, {**data, "port": port, "extra": dict(extra)})


def _hide(value: Any, secret: bool) -> Any:
    """Wrap strings under secret-looking keys as Secret, at any depth (a service-account
    ``keyfile_dict``, a ``headers`` table holding an API key)."""
    if isinstance(value, Mapping):
        return {k: _hide(v, secret or bool(_SECRET_KEY.search(str(k)))) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v, secret) for v in value]
    if secret and isinstance(value, str) and value:
        return Secret(value)
    if isinstance(value, str) and "://" in value:
        _mask_url_password(value)  # an endpoint_url with user info: the URL stays usable
    return value


def _mask_url_password(url: str) -> None:
    """Register the password of a URL-valued extra (``endpoint_url =
    "https://user:pw@proxy"``) with the masker, so every log line and error quoting it
    (botocore's included) shows ``***`` instead."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        masker.add(password)
        masker.add(unquote(password))  # as written and as sent


def _reveal(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _build(conn_id: str, data: Mapping[str, Any]) -> Connection:
    extra = _hide(dict(data.get("extra") or {}), False)
    return Connection(
        conn_id=conn_id,
        conn_type=data.get("conn_type"),
        host=data.get("host"),
        port=data.get("port"),
        login=data.get("login"),
        password=_secret(data.get("password")),
        schema=data.get("schema"),
        extra=extra,
    )


def env_var_name(conn_id: str) -> str:
    return "DAGFETCH_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()


def _parse_value(conn_id: str, value: Any, where: str) -> Connection:
    if isinstance(value, Connection):
        return value
    if isinstance(value, Mapping):
        return connection_from_mapping(conn_id, value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConnectionConfigError(
                    conn_id, f"{where} holds invalid JSON ({exc.msg})"
                ) from None
            return connection_from_mapping(conn_id, decoded)
        return connection_from_uri(conn_id, text)
    raise ConnectionConfigError(
        conn_id, f"{where} holds a {type(value).__name__}, not a URI or an object"
    )


SecretsBackend = Callable[[str], Any]


@attrs.define
class ConnectionResolver:
    """Looks up conn_ids in the environment, a connections file, then secret backends."""

    connections_file: Path | None = None
    environ: Mapping[str, str] = attrs.field(factory=lambda: os.environ)
    backends: list[SecretsBackend] | None = None
    _file_cache: dict[str, Any] | None = attrs.field(default=None, init=False)

    def resolve(self, conn_id: str) -> Connection:
        env_name = env_var_name(conn_id)
        if env_name in self.environ:
            return _parse_value(conn_id, self.environ[env_name], f"${env_name}")
        file_data = self._load_file()
        if conn_id in file_data:
            return _parse_value(conn_id, file_data[conn_id], f"connections file {self._file()}")
        for backend in self._backends():
            found = backend(conn_id)
            if found is not None:
                return _parse_value(conn_id, found, f"secrets backend {backend!r}")
        where = [f"${env_name}"]
        if self._file():
            where.append(f"connections file {self._file()}")
        raise ConnectionConfigError(
            conn_id,
            f"not found (looked in {', '.join(where)} and "
            f"{len(self._backends())} secrets backend(s))",
        )

    def _file(self) -> Path | None:
        if self.connections_file is not None:
            return self.connections_file
        env = self.environ.get("DAGFETCH_CONNECTIONS_FILE")
        return Path(env) if env else None

    def _load_file(self) -> dict[str, Any]:
        if self._file_cache is None:
            path = self._file()
            self._file_cache = {}
            if path is not None:
                if sys.version_info >= (3, 11):  # here: a sync with no connections file
                    import tomllib
                else:  # pragma: no cover
                    import tomli as tomllib
                try:
                    text = path.read_text(encoding="utf-8")
                    data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
                except FileNotFoundError:
                    raise ConnectionConfigError("*", f"connections file {path} not found") from None
                except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
                    raise ConnectionConfigError(
                        "*", f"connections file {path} is not valid: {type(exc).__name__}"
                    ) from None
                if not isinstance(data, dict):
                    raise ConnectionConfigError("*", f"connections file {path} must be a table")
                self._file_cache = data
        return self._file_cache

    def _backends(self) -> list[SecretsBackend]:
        if self.backends is None:
            from dagfetch._entrypoints import entry_points

            self.backends = [ep.load() for ep in entry_points(SECRETS_GROUP)]
        return self.backends
