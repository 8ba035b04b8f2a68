"""Turn an fsspec ``info`` dict into a change token, a verifiable digest and version data.

Each store names its change marker differently; this module is the one place that knows how
(the family table in :mod:`dagfetch.storage.families` says which function serves which store).
A token must change whenever the content does; equal tokens promise equal bytes. Tokens are
content markers where the store has one (S3 ETag, GCS md5Hash, Azure ETag), so rewriting a
file with the same bytes is not a change; the object version (S3 VersionId, GCS generation,
Azure version id) goes into ``extra`` so that exact object can be fetched again later.

- S3: ``etag:<ETag>`` (the size is compared beside it). An ETag is compared, never taken for
  an MD5: multipart (``-N``) and KMS-encrypted objects' ETags are not MD5s of the body.
- GCS: ``md5:<hex>`` from ``md5Hash`` (checked after download); composite objects have no
  MD5, then ``crc32c:`` plus the generation.
- Azure Blob: ``etag:<ETag>``; ``content_md5`` when the uploader set it (checked).
- HTTP: ``etag:<ETag>``, else ``modified:<Last-Modified>``.
- Local and other file systems: ETag or MD5 when given, else mtime (and inode).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs

VERSION_KEY = "version_id"  # the RemoteFile.extra key holding the object version


@attrs.frozen
class Described:
    token: str
    digest: str | None = None
    version: str | None = None


def _first(info: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return value
    return None


def _etag(info: Mapping[str, Any]) -> str | None:
    etag = _first(info, "ETag", "etag", "Etag")
    return None if etag is None else str(etag).strip().strip('"')


def _is_md5_hex(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value.lower())


def _b64_to_hex(value: Any) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        try:
            raw = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            return None
    return raw.hex() if len(raw) == 16 else None


def _real_version(value: Any) -> str | None:
    # S3 reports "null" for objects written while versioning was off
    return None if value in (None, "", "null") else str(value)


def describe_s3(info: Mapping[str, Any], version_aware: bool = False) -> Described:
    etag = _etag(info)
    version = _real_version(info.get("VersionId")) if version_aware else None
    if etag:
        # no digest from the ETag: under SSE-KMS / SSE-C a single-part ETag looks like an
        # MD5 but is not one; botocore checks the response's own checksum instead
        return Described(f"etag:{etag}", None, version)
    return describe_any(info)


def describe_gcs(info: Mapping[str, Any], version_aware: bool = False) -> Described:
    generation = _real_version(info.get("generation")) if version_aware else None
    md5 = _b64_to_hex(info["md5Hash"]) if info.get("md5Hash") else None
    if md5:
        return Described(f"md5:{md5}", f"md5:{md5}", generation)
    crc = _first(info, "crc32c")
    gen = _first(info, "generation")
    if crc and gen:
        return Described(f"crc32c:{crc}:generation:{gen}", None, generation)
    return describe_any(info)


def describe_azure(info: Mapping[str, Any], version_aware: bool = False) -> Described:
    version = _real_version(info.get("version_id")) if version_aware else None
    settings = info.get("content_settings") or {}
    raw_md5 = settings.get("content_md5") if isinstance(settings, Mapping) else None
    md5 = _b64_to_hex(raw_md5) if raw_md5 else None
    etag = _etag(info)
    if etag:
        return Described(f"etag:{etag}", f"md5:{md5}" if md5 else None, version)
    return describe_any(info)


def describe_http(info: Mapping[str, Any], version_aware: bool = False) -> Described:
    etag = _etag(info)
    if etag:
        return Described(f"etag:{etag}")
    modified = _first(info, "last_modified", "Last-Modified")
    if modified:
        return Described(f"modified:{modified}")
    return describe_any(info)


def describe_any(info: Mapping[str, Any], version_aware: bool = False) -> Described:
    """Local, memory and any other file system: whatever marker the info carries."""
    return Described(change_token(info), digest(info))


def change_token(info: Mapping[str, Any]) -> str:
    """A string that changes when the object's content changes (any file system)."""
    etag = _etag(info)
    if etag:
        return f"etag:{etag}"
    md5 = _first(info, "md5Hash", "content_md5")
    if md5:
        return f"md5:{md5}"
    if "ino" in info and "mtime" in info:  # local: a rewrite changes mtime, a replace the inode
        return f"mtime:{float(info['mtime']):.9f}:ino:{info['ino']}"
    modified = _first(info, "mtime", "LastModified", "last_modified", "updated", "created")
    if modified is not None:
        stamp = modified.isoformat() if hasattr(modified, "isoformat") else str(modified)
        return f"mtime:{stamp}"
    return f"size:{info.get('size')}"


def digest(info: Mapping[str, Any]) -> str | None:
    """An ``algo:hex`` the cache can check after download, when the store gives one cheaply."""
    etag = _etag(info)
    # a single-part S3-style ETag is the MD5 of the body; multipart ones carry a '-N' suffix
    if etag and _is_md5_hex(etag) and _first(info, "StorageClass", "Key") is not None:
        return f"md5:{etag.lower()}"
    return None
