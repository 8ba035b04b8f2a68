"""Folder markers in object-store listings: zero-byte objects standing for folders, which
the fsspec fetcher leaves out of a version."""

from __future__ import annotations

from typing import Any

from dagfetch.paths import parent_folders


def folders_of(found: dict[str, dict[str, Any]]) -> set[str]:
    """Every folder the listed names imply (``a``, ``a/b`` for ``a/b/c.py``), and the root."""
    return {"", *parent_folders(rel.strip("/") for rel in found)}


def is_folder_marker(rel: str, info: dict[str, Any], folders: set[str]) -> bool:
    """A zero-byte object standing for a folder ("dags/", "dags/sub/"), which the AWS
    console's "Create folder" and many upload tools write. fsspec strips the trailing slash
    from some names, so the stored key is checked too, and an empty object named like a
    folder of other listed files (or like the root) is one as well."""
    names = (rel, str(info.get("listed_name") or ""), str(info.get("Key") or ""),
             str(info.get("name") or ""))
    if any(name.endswith("/") for name in names if name):
        return True
    clean = rel.strip("/")
    return info.get("size") in (0, None) and (clean in folders or clean in ("", "."))
