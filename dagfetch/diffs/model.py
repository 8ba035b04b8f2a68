"""The values of a code diff (:class:`VersionDiff`, one :class:`FileDiff` per path, their
:class:`Hunk` and :class:`DiffLine` values) and how they print: as ``dvc diff`` does
(:meth:`VersionDiff.summary_text`), as ``git diff --stat`` (:meth:`~VersionDiff.stat_text`),
as ``git diff`` (:meth:`~VersionDiff.patch_text`, a patch ``git apply`` takes) and as JSON in
``dvc diff --json``'s shape (:meth:`~VersionDiff.to_json`).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from dagfetch.models import CachedFile

DiffStatus = Literal["added", "deleted", "modified", "renamed"]
LineKind = Literal["context", "added", "deleted"]



@attrs.frozen
class DiffLimits:
    """How much content a diff may read and show. A file over ``max_file_bytes`` (either side)
    gets no hunks; once ``max_total_bytes`` were read, or ``max_lines`` lines of hunks made,
    for one diff, the remaining files get none (their counts stay unknown)."""

    max_file_bytes: int = 1024 * 1024
    max_total_bytes: int = 16 * 1024 * 1024
    max_lines: int = 200_000
    context: int = 3


@attrs.frozen
class DiffLine:
    """One line of a hunk. ``text`` is the line without its ``\\n``; ``eol`` is false for a
    last line that has none (git's ``\\ No newline at end of file``)."""

    kind: LineKind
    old_number: int | None
    new_number: int | None
    text: str
    eol: bool = True

    @property
    def marker(self) -> str:
        return {"context": " ", "added": "+", "deleted": "-"}[self.kind]


@attrs.frozen
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[DiffLine, ...]

    @property
    def header(self) -> str:
        return f"@@ -{_range(self.old_start, self.old_count)} " \
               f"+{_range(self.new_start, self.new_count)} @@"


def _range(start: int, count: int) -> str:
    # unified diff's convention: an empty range names the line before it
    first = start if count else start - 1
    return str(first) if count == 1 else f"{first},{count}"


@attrs.frozen
class FileDiff:
    """One path that differs. ``path`` is the new path (the old one for a deleted file);
    ``old_path`` is set for a rename. ``insertions``/``deletions`` are None when no hunks
    were computed (binary, skipped, or only the file lists were asked for)."""

    status: DiffStatus
    path: str
    old: CachedFile | None
    new: CachedFile | None
    old_path: str | None = None
    hunks: tuple[Hunk, ...] = ()
    binary: bool = False
    skipped: str | None = None
    insertions: int | None = None
    deletions: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "path": self.path,
            "old_path": self.old_path,
            "old_sha256": self.old.sha256 if self.old else None,
            "new_sha256": self.new.sha256 if self.new else None,
            "old_size": self.old.size if self.old else None,
            "new_size": self.new.size if self.new else None,
            "binary": self.binary,
            "skipped": self.skipped,
            "insertions": self.insertions,
            "deletions": self.deletions,
            "hunks": [
                {"header": h.header, "old_start": h.old_start, "old_count": h.old_count,
                 "new_start": h.new_start, "new_count": h.new_count,
                 "lines": [{"kind": line.kind, "old_number": line.old_number,
                            "new_number": line.new_number, "text": line.text,
                            "eol": line.eol} for line in h.lines]}
                for h in self.hunks
            ],
        }


@attrs.frozen
class VersionDiff:
    """The files that differ between versions ``old_version`` and ``new_version``."""

    repo_id: str
    old_version: str
    new_version: str
    files: tuple[FileDiff, ...]
    patched: bool = False

    def _of(self, status: DiffStatus) -> tuple[FileDiff, ...]:
        return tuple(f for f in self.files if f.status == status)

    @property
    def added(self) -> tuple[FileDiff, ...]:
        return self._of("added")

    @property
    def deleted(self) -> tuple[FileDiff, ...]:
        return self._of("deleted")

    @property
    def modified(self) -> tuple[FileDiff, ...]:
        return self._of("modified")

    @property
    def renamed(self) -> tuple[FileDiff, ...]:
        return self._of("renamed")

    @property
    def empty(self) -> bool:
        return not self.files

    def to_json(self) -> dict[str, Any]:
        """``dvc diff --json``'s shape (added/deleted/modified/renamed lists of paths), with
        the versions and, per file, what dagfetch knows besides (``files``)."""
        return {
            "repo_id": self.repo_id,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "added": [{"path": f.path} for f in self.added],
            "deleted": [{"path": f.path} for f in self.deleted],
            "modified": [{"path": f.path} for f in self.modified],
            "renamed": [{"path": {"old": f.old_path, "new": f.path}} for f in self.renamed],
            "files": [f.to_json() for f in self.files],
        }

    def summary_text(self) -> str:
        """What ``dvc diff`` prints: the paths under each status, then a summary line."""
        lines = []
        for title, files in (("Added", self.added), ("Deleted", self.deleted),
                             ("Modified", self.modified), ("Renamed", self.renamed)):
            if not files:
                continue
            lines.append(f"{title}:")
            for f in files:
                shown = f"{f.old_path} -> {f.path}" if f.old_path else f.path
                lines.append(f"    {shown}")
            lines.append("")
        counts = [f"{len(self.added)} added", f"{len(self.deleted)} deleted",
                  f"{len(self.modified)} modified"]
        if self.renamed:
            counts.append(f"{len(self.renamed)} renamed")
        lines.append("files summary: " + ", ".join(counts))
        return "\n".join(lines)

    def stat_text(self) -> str:
        """What ``git diff --stat`` prints (``Bin a -> b bytes`` for binary files)."""
        if not self.files:
            return ""
        names = [f"{f.old_path} => {f.path}" if f.old_path else f.path for f in self.files]
        width = max(len(name) for name in names)
        changes = [(f.insertions or 0) + (f.deletions or 0) for f in self.files]
        most = max(changes, default=0)
        count_width = len(str(most))
        bar_room = max(10, 80 - width - count_width - 6)
        lines = []
        for f, name, total in zip(self.files, names, changes, strict=True):
            if f.binary or f.skipped or f.insertions is None:
                old = f.old.size if f.old else 0
                new = f.new.size if f.new else 0
                detail = f"Bin {old} -> {new} bytes" if f.binary else (f.skipped or "")
                lines.append(f" {name.ljust(width)} | {detail}".rstrip())
                continue
            scale = min(1.0, bar_room / most) if most else 1.0
            plus = round((f.insertions or 0) * scale)
            minus = round((f.deletions or 0) * scale)
            bar = "+" * plus + "-" * minus
            lines.append(f" {name.ljust(width)} | {str(total).rjust(count_width)} {bar}".rstrip())
        insertions = sum(f.insertions or 0 for f in self.files)
        deletions = sum(f.deletions or 0 for f in self.files)
        plural = "s" if len(self.files) != 1 else ""
        tail = f" {len(self.files)} file{plural} changed"
        if insertions or not deletions:
            tail += f", {insertions} insertion{'s' if insertions != 1 else ''}(+)"
        if deletions:
            tail += f", {deletions} deletion{'s' if deletions != 1 else ''}(-)"
        lines.append(tail)
        return "\n".join(lines)

    def patch_text(self) -> str:
        """What ``git diff`` prints: a patch ``git apply`` takes (text files within limits)."""
        out: list[str] = []
        for f in self.files:
            old_name = f.old_path or f.path
            out.append(f"diff --git a/{old_name} b/{f.path}")
            if f.status == "added":
                out.append(f"new file mode {_mode(f.new)}")
            elif f.status == "deleted":
                out.append(f"deleted file mode {_mode(f.old)}")
            elif f.status == "renamed":
                out += ["similarity index 100%", f"rename from {old_name}", f"rename to {f.path}"]
            elif f.old is not None and f.new is not None and _mode(f.old) != _mode(f.new):
                out += [f"old mode {_mode(f.old)}", f"new mode {_mode(f.new)}"]
            if f.binary:
                out.append(f"Binary files {_side('a', old_name, f.old)} and "
                           f"{_side('b', f.path, f.new)} differ")
                continue
            if f.skipped:
                out.append(f"# {f.skipped}")
                continue
            if not f.hunks:
                continue
            out.append(f"--- {_side('a', old_name, f.old)}")
            out.append(f"+++ {_side('b', f.path, f.new)}")
            for hunk in f.hunks:
                out.append(hunk.header)
                for line in hunk.lines:
                    out.append(line.marker + line.text)
                    if not line.eol:
                        out.append("\\ No newline at end of file")
        return "\n".join(out) + ("\n" if out else "")


def _mode(f: CachedFile | None) -> str:
    return "120000" if f is not None and f.kind == "symlink" else "100644"


def _side(prefix: str, path: str, f: CachedFile | None) -> str:
    return f"{prefix}/{path}" if f is not None else "/dev/null"


