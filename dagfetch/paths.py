"""Refuse remote paths that would escape the cache. Every backend's listing passes through here."""

from __future__ import annotations

import posixpath
import re

from dagfetch.errors import UnsafePathError

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relpath(path: str) -> str:
    """Return ``path`` normalized to a clean relative ``a/b/c`` form, or raise UnsafePathError.

    Refused: empty paths, absolute paths (``/x``, ``C:x``, ``\\\\x``), ``..`` components,
    backslashes (they mean a separator on Windows readers), NUL and other control characters.
    """
    if not path:
        raise UnsafePathError(path, "empty path")
    if any(ord(c) < 32 for c in path):
        raise UnsafePathError(path, "control character in path")
    if "\\" in path:
        raise UnsafePathError(path, "backslash in path")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafePathError(path, "absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePathError(path, "path names the repository root")
    if ".." in parts:
        raise UnsafePathError(path, "'..' component escapes the repository")
    return "/".join(parts)


def safe_link_target(link_path: str, target: str) -> str:
    """Check that a symlink at ``link_path`` pointing at ``target`` stays inside the tree.

    Returns the target unchanged (relative links keep working when the tree moves).
    """
    if not target or target.startswith("/") or _DRIVE.match(target) or "\\" in target:
        raise UnsafePathError(link_path, f"symlink to {target!r} points outside the repository")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise UnsafePathError(link_path, f"symlink to {target!r} points outside the repository")
    return target
