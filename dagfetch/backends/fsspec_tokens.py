"""Turn an fsspec ``info`` dict into a change token and an optional verifiable digest.

Each store names its change marker differently; this module is the one place that knows how.
A token must change whenever the content does; equal tokens promise equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _first(info: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return value
    return None


def change_token(info: Mapping[str, Any]) -> str:
    """A string that changes when the object's content changes."""
    version = _first(info, "VersionId", "version_id")
    if version and version != "null":
        return f"version:{version}"
    generation = _first(info, "generation")
    if generation:
        return f"generation:{generation}"
    etag = _first(info, "ETag", "etag", "Etag")
    if etag:
        return "etag:" + str(etag).strip('"')
    md5 = _first(info, "md5Hash", "content_md5")
    if md5:
        return f"md5:{md5}"
    if "ino" in info and "mtime" in info:  # local files: a rewrite changes mtime, a replace the inode
        return f"mtime:{float(info['mtime']):.9f}:ino:{info['ino']}"
    modified = _first(info, "mtime", "LastModified", "last_modified", "updated", "created")
    if modified is not None:
        stamp = modified.isoformat() if hasattr(modified, "isoformat") else str(modified)
        return f"mtime:{stamp}"
    return f"size:{info.get('size')}"


def digest(info: Mapping[str, Any]) -> str | None:
    """An ``algo:hex`` the cache can check after download, when the store gives one cheaply."""
    etag = _first(info, "ETag", "etag")
    if etag:
        value = str(etag).strip('"')
        # a single-part S3 ETag is the MD5 of the body; multipart ones carry a '-N' suffix
        if len(value) == 32 and "-" not in value and all(c in "0123456789abcdef" for c in value):
            if _first(info, "StorageClass", "storageClass", "Key") is not None:
                return f"md5:{value}"
    return None
