"""Lines as git counts them, and the hunks of a unified diff between two texts."""

from __future__ import annotations

import difflib

from dagfetch.diffs.model import DiffLine, Hunk, LineKind

#: Bytes git reads to decide whether a file is binary.
BINARY_PROBE = 8000


def is_binary(data: bytes) -> bool:
    """git's rule (a NUL byte in the first 8,000 bytes), or bytes that are not UTF-8."""
    if b"\0" in data[:BINARY_PROBE]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def line_hunks(old: str, new: str, context: int = 3) -> list[Hunk]:
    """The hunks of a unified diff from text ``old`` to text ``new``, with ``context`` lines
    around each change (difflib's matching, as ``difflib.unified_diff`` uses it)."""
    a, b = split_lines(old), split_lines(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    hunks = []
    for group in matcher.get_grouped_opcodes(context):
        lines: list[DiffLine] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [_line("context", i + 1, j1 + i - i1 + 1, a[i]) for i in range(i1, i2)]
                continue
            lines += [_line("deleted", i + 1, None, a[i]) for i in range(i1, i2)]
            lines += [_line("added", None, j + 1, b[j]) for j in range(j1, j2)]
        first, last = group[0], group[-1]
        hunks.append(Hunk(first[1] + 1, last[2] - first[1], first[3] + 1, last[4] - first[3],
                          tuple(lines)))
    return hunks


def split_lines(text: str) -> list[str]:
    """Lines as git and ``patch`` count them: split at ``\n`` only (``str.splitlines`` also
    splits at ``\r``, form feeds and Unicode separators), each keeping its ``\n``."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _line(kind: LineKind, old_number: int | None, new_number: int | None, raw: str) -> DiffLine:
    eol = raw.endswith("\n")
    return DiffLine(kind, old_number, new_number, raw[:-1] if eol else raw, eol)


