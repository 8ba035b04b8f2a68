"""From a ``conn_id`` connection to the keyword arguments of an fsspec file system, per store.

Connection fields per store (``extra`` keys in parentheses; Airflow's names work too):

- S3: login/password = access key / secret (``aws_access_key_id``, ``aws_secret_access_key``),
  ``session_token`` (``aws_session_token``, ``token``), ``endpoint_url``, ``region_name``
  (``region``), ``anon``;
- GCS: ``token`` (a service-account JSON file path, ``anon``, ``google_default``, ``cloud``),
  ``key_path``/``keyfile_path``, ``keyfile_dict`` (the JSON itself), ``anon``, ``project``,
  ``endpoint_url``;
- Azure Blob: ``connection_string``; or login/password = account name / account key
  (``account_name``, ``account_key``); or a SAS (``sas_token``); ``blob_endpoint`` (or the
  connection's host) for a non-default endpoint such as Azurite; ``anon``;
- HTTP(S): login/password = basic auth; ``token``/``bearer_token`` = a bearer token;
  ``headers`` (an object) = extra request headers.

Any other ``extra`` key is passed to the file system as it is. Which function serves which
store is said once, in :mod:`dagfetch.storage.families`.

Secret values stay :class:`dagfetch.connections.Secret` until this module hands them to the
file system; they are never logged, and never written anywhere by dagfetch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from dagfetch.connections import Connection, Secret
from dagfetch.errors import ConnectionConfigError


def extra_as_is(conn: Connection) -> dict[str, Any]:
    """Stores without a mapping of their own get the connection's ``extra`` unchanged."""
    return conn.revealed_extra()


def _pop(extra: dict[str, Any], *names: str) -> Any:
    found = None
    for name in names:
        value = extra.pop(name, None)
        if found is None and value not in (None, ""):
            found = value
    return found


def _flag(conn: Connection, value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConnectionConfigError(conn.conn_id, f"{name!r} must be true or false, not {value!r}")


def s3_options(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    key = conn.login or _pop(extra, "aws_access_key_id", "key")
    secret = (conn.password.reveal() if conn.password else None) or _pop(
        extra, "aws_secret_access_key", "secret"
    )
    extra.pop("aws_access_key_id", None)
    extra.pop("aws_secret_access_key", None)
    token = _pop(extra, "aws_session_token", "session_token", "token")
    if key:
        out["key"] = key
    if secret:
        out["secret"] = secret
    if token:
        out["token"] = token
    endpoint = _pop(extra, "endpoint_url", "endpoint")
    if endpoint is None and conn.host:
        scheme = "https" if _flag(conn, extra.pop("use_ssl", True), "use_ssl") else "http"
        endpoint = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    if endpoint:
        out["endpoint_url"] = str(endpoint)
    region = _pop(extra, "region_name", "region")
    if region:
        out.setdefault("client_kwargs", {})["region_name"] = str(region)
    if "anon" in extra:
        out["anon"] = _flag(conn, extra.pop("anon"), "anon")
    return {**extra, **out}


def gcs_options(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    keyfile = _pop(extra, "keyfile_dict")
    token = _pop(extra, "token", "key_path", "keyfile_path")
    if keyfile is not None:
        if isinstance(keyfile, str):
            try:
                keyfile = json.loads(keyfile)
            except json.JSONDecodeError:
                raise ConnectionConfigError(
                    conn.conn_id, "'keyfile_dict' is not valid JSON"
                ) from None
        if not isinstance(keyfile, Mapping):
            raise ConnectionConfigError(conn.conn_id, "'keyfile_dict' must be a JSON object")
        out["token"] = dict(keyfile)
    elif token is not None:
        out["token"] = token
    elif conn.password:
        out["token"] = conn.password.reveal()  # an OAuth access token
    if "anon" in extra and _flag(conn, extra.pop("anon"), "anon"):
        out["token"] = "anon"  # noqa: S105 - gcsfs's name for "no credentials", not a secret
    endpoint = _pop(extra, "endpoint_url", "endpoint")
    if endpoint:
        out["endpoint_url"] = str(endpoint)
    project = _pop(extra, "project", "project_id") or conn.schema
    if project:
        out["project"] = str(project)
    return {**extra, **out}


def azure_options(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    connection_string = _pop(extra, "connection_string")
    account = conn.login or _pop(extra, "account_name")
    extra.pop("account_name", None)
    key = (conn.password.reveal() if conn.password else None) or _pop(
        extra, "account_key", "shared_access_key"
    )
    sas = _pop(extra, "sas_token", "sas")
    endpoint = _pop(extra, "blob_endpoint", "account_url")
    if endpoint is None and conn.host:
        scheme = "https" if _flag(conn, extra.pop("use_ssl", True), "use_ssl") else "http"
        endpoint = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
        if conn.schema:
            endpoint += f"/{conn.schema}"
    if connection_string:
        out["connection_string"] = connection_string
    elif endpoint:
        # adlfs reaches a custom endpoint (Azurite, sovereign clouds) only through a
        # connection string, so build one from the parts
        parts = [f"BlobEndpoint={endpoint}"]
        if account:
            parts.append(f"AccountName={account}")
        if key:
            parts.append(f"AccountKey={key}")
        if sas:
            parts.append(f"SharedAccessSignature={str(sas).lstrip('?')}")
        out["connection_string"] = ";".join(parts) + ";"
        if account:
            out["account_name"] = account
    else:
        if account:
            out["account_name"] = account
        if key:
            out["account_key"] = key
        if sas:
            out["sas_token"] = str(sas)
    if "anon" in extra:
        out["anon"] = _flag(conn, extra.pop("anon"), "anon")
    return {**extra, **out}


def http_options(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    headers = extra.pop("headers", None) or {}
    if not isinstance(headers, Mapping):
        raise ConnectionConfigError(conn.conn_id, "'headers' must be an object of header: value")
    headers = dict(headers)
    token = _pop(extra, "bearer_token", "token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if conn.login:
        password = conn.password.reveal() if conn.password else ""
        pair = f"{conn.login}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    if "Authorization" in headers:
        Secret(headers["Authorization"])  # registers the encoded form with the log masker
    if headers:
        out["headers"] = headers
    return {**extra, **out}
