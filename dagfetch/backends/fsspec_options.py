"""From a manifest entry and its connection to the keyword arguments of an fsspec file system.

Two kinds of settings arrive here:

- dagfetch's own options in the manifest's ``options`` table (:class:`FetchOptions`):
  ``concurrency``, ``retries``, ``timeout`` and ``version_aware``; checked by name and type;
- storage options: everything else in ``options``, plus what the ``conn_id`` connection holds,
  mapped per store to the names s3fs, gcsfs, adlfs and fsspec's HTTP file system expect.

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

Secret values stay :class:`dagfetch.connections.Secret` until this module hands them to the
file system; they are never logged, and never written anywhere by dagfetch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import attrs

from dagfetch.connections import Connection, Secret
from dagfetch.errors import ConnectionError_, ManifestError

DEFAULT_CONCURRENCY = 16
DEFAULT_RETRIES = 4

S3 = frozenset({"s3", "s3a"})
GCS = frozenset({"gs", "gcs"})
AZURE = frozenset({"az", "abfs", "abfss"})
HTTP = frozenset({"http", "https"})
# stores whose objects carry a version (S3 VersionId, GCS generation, Azure version id)
VERSIONED_STORES = S3 | GCS | AZURE


@attrs.frozen
class FetchOptions:
    """dagfetch's own settings of one repository (manifest ``options``).

    ``concurrency``: downloads in flight at once. ``retries``: attempts per request on
    throttling, 5xx and connection errors, with exponential backoff. ``timeout``: seconds a
    listing or one whole download batch may take, retries included (None: no limit).
    ``version_aware``: read object versions (S3 versioning, GCS generations, Azure versions)
    so an evicted version can be fetched again exactly.
    """

    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = DEFAULT_RETRIES
    timeout: float | None = None
    version_aware: bool = False


def split_options(
    repo_id: str, options: Mapping[str, Any]
) -> tuple[FetchOptions, dict[str, Any]]:
    """Take dagfetch's own options out of ``options``; the rest are storage options."""
    rest = dict(options)
    field = f"dag_repositories.{repo_id}.options"

    def whole(name: str, default: int, minimum: int) -> int:
        value = rest.pop(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ManifestError(f"{field}.{name}", f"{value!r} is not a whole number >= {minimum}")
        return value

    concurrency = whole("concurrency", DEFAULT_CONCURRENCY, 1)
    retries = whole("retries", DEFAULT_RETRIES, 1)
    timeout = rest.pop("timeout", None)
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ManifestError(f"{field}.timeout", f"{timeout!r} is not a positive number of seconds")
    version_aware = rest.pop("version_aware", False)
    if not isinstance(version_aware, bool):
        raise ManifestError(f"{field}.version_aware", "must be true or false")
    return FetchOptions(concurrency, retries, None if timeout is None else float(timeout),
                        version_aware), rest


def storage_options(protocol: str, connection: Connection | None) -> dict[str, Any]:
    """fsspec keyword arguments for ``protocol`` from a connection (empty without one)."""
    if connection is None:
        return {}
    if protocol in S3:
        return _s3(connection)
    if protocol in GCS:
        return _gcs(connection)
    if protocol in AZURE:
        return _azure(connection)
    if protocol in HTTP:
        return _http(connection)
    return connection.revealed_extra()


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
    raise ConnectionError_(conn.conn_id, f"{name!r} must be true or false, not {value!r}")


def _s3(conn: Connection) -> dict[str, Any]:
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


def _gcs(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    keyfile = _pop(extra, "keyfile_dict")
    token = _pop(extra, "token", "key_path", "keyfile_path")
    if keyfile is not None:
        if isinstance(keyfile, str):
            try:
                keyfile = json.loads(keyfile)
            except json.JSONDecodeError:
                raise ConnectionError_(conn.conn_id, "'keyfile_dict' is not valid JSON") from None
        if not isinstance(keyfile, Mapping):
            raise ConnectionError_(conn.conn_id, "'keyfile_dict' must be a JSON object")
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


def _azure(conn: Connection) -> dict[str, Any]:
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


def _http(conn: Connection) -> dict[str, Any]:
    extra = conn.revealed_extra()
    out: dict[str, Any] = {}
    headers = extra.pop("headers", None) or {}
    if not isinstance(headers, Mapping):
        raise ConnectionError_(conn.conn_id, "'headers' must be an object of header: value")
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


def versioned_path(protocol: str, path: str, version: str) -> str:
    """The path naming one version of an object, in the form each file system parses (with
    ``version_aware=True``)."""
    if protocol in S3:
        return f"{path}?versionId={version}"
    if protocol in GCS:
        return f"{path}#{version}"
    if protocol in AZURE:
        return f"{path}?versionid={version}"
    raise ValueError(f"{protocol}:// keeps no object versions")
