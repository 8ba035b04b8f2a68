"""Refuse remote paths that would escape the cache. Every backend's listing passes through here."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable

from dagfetch.errors import UnsafePathError

_DRIVE = re.compile(r"^[A-Za-z]:")
NAME_MAX = 255  # bytes of one name on Linux, macOS and Windows file systems
# characters a reviewer cannot see, or sees as something else: C0 controls and DEL, C1
# controls (U+0080-U+009F), and the bidirectional overrides, embeddings, isolates and marks
# that reorder how a name is shown (``evil\u202eyp.txt`` shows as ``eviltxt.py``)
_INVISIBLE_CHARS = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")


def _invisible(text: str) -> str | None:
    """A description of the first invisible or reordering character of ``text``, if any."""
    found = _INVISIBLE.search(text)
    if found is None:
        return None
    char = found.group()
    kind = "control character" if ord(char) < 0xA0 else "bidirectional control character"
    return f"{kind} U+{ord(char):04X}"


# a path that is clean as it is: names of 1 to NAME_MAX // 4 characters, none invisible, no
# backslash, joined by single slashes (a "." or ".." name starts with a dot: see below)
_NAME = f"[^/\\\\{_INVISIBLE_CHARS}]{{1,{NAME_MAX // 4}}}"
_CLEAN = re.compile(f"(?:{_NAME}/)*{_NAME}")


def safe_relpath(path: str) -> str:
    """Return ``path`` normalized to a clean relative ``a/b/c`` form, or raise UnsafePathError.

    Refused: empty paths, absolute paths (``/x``, ``C:x``, ``\\\\x``), ``..`` components,
    backslashes (they mean a separator on Windows readers), NUL and other C0 and C1 control
    characters, DEL, and bidirectional controls (U+202A-U+202E, U+2066-U+2069, marks).
    """
    # every listed path comes here: most are clean already, which one regular expression
    # says (a name starting with a dot, "." and ".." among them, or a drive takes the long way)
    if (
        path[:1] != "." and "/." not in path and path[1:2] != ":"
        and _CLEAN.fullmatch(path) is not None
    ):
        return path
    if not path:
        raise UnsafePathError(path, "empty path")
    invisible = _invisible(path)
    if invisible is not None:
        raise UnsafePathError(path, f"{invisible} in path")
    if "\\" in path:
        raise UnsafePathError(path, "backslash in path")
    if path.startswith("/") or _DRIVE.match(path):
        raise UnsafePathError(path, "absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePathError(path, "path names the repository root")
    if ".." in parts:
        raise UnsafePathError(path, "'..' component escapes the repository")
    for part in parts:
        # every listed path comes here: a name of at most NAME_MAX // 4 characters cannot
        # exceed NAME_MAX bytes (4 at most each), so only longer ones are encoded
        if len(part) > NAME_MAX // 4:
            size = len(part.encode("utf-8", "surrogateescape"))
            if size > NAME_MAX:
                raise UnsafePathError(
                    path, f"a name of {size} bytes; file systems take {NAME_MAX} at most")
    return "/".join(parts)


def safe_link_target(link_path: str, target: str) -> str:
    """Check that a symlink at ``link_path`` pointing at ``target`` stays inside the tree.

    Returns the target unchanged (relative links keep working when the tree moves).
    """
    invisible = _invisible(target)
    if invisible is not None:
        raise UnsafePathError(link_path, f"{invisible} in the symlink's target {target!r}")
    if not target or target.startswith("/") or _DRIVE.match(target) or "\\" in target:
        raise UnsafePathError(link_path, f"symlink to {target!r} points outside the repository")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise UnsafePathError(link_path, f"symlink to {target!r} points outside the repository")
    return target


def parent_folders(paths: Iterable[str]) -> set[str]:
    """Every folder that clean relative ``paths`` imply: ``a`` and ``a/b`` for ``a/b/c.py``."""
    folders: set[str] = set()
    for path in paths:
        cut = path.rfind("/")
        while cut > 0 and path[:cut] not in folders:
            folders.add(path[:cut])
            cut = path.rfind("/", 0, cut)
    return folders


def name_key(path: str) -> str:
    """What ``path`` is on a case-insensitive, normalizing file system (macOS, Windows):
    NFC-normalized and case-folded. Two paths with one key are twins."""
    return unicodedata.normalize("NFC", path).casefold()


def check_no_twins(paths: Iterable[str]) -> None:
    """Refuse two names (of files or of the folders holding them) that differ only by case
    or by Unicode normalization (``A.py`` and ``a.py``; ``é`` as one code point or two):
    checked out on macOS or Windows they are one file, and which one wins is an accident."""
    seen: dict[str, str] = {}
    folders: set[str] = set()
    for path in paths:
        # each folder is checked once, the first time a path below it comes (every listed
        # path comes here), then only the names below it
        names = [path]
        cut = path.rfind("/")
        while cut > 0:
            folder = path[:cut]
            if folder in folders:
                break
            folders.add(folder)
            names.append(folder)
            cut = path.rfind("/", 0, cut)
        for name in reversed(names):
            # an ASCII name's key is its lower case: no normalization form changes it
            key = name.lower() if name.isascii() else name_key(name)
            other = seen.setdefault(key, name)
            if other != name:
                raise UnsafePathError(
                    path,
                    f"{name!r} and {other!r} differ only by case or Unicode normalization "
                    "(one file on macOS and Windows); rename one, or set "
                    "limits.name_twins = 'allow'",
                )
