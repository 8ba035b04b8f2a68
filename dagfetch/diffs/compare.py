"""Comparing two cached versions: which paths differ, from their records, and the hunks of
text files, from their contents (trees, or the content store for a stored version), within
:class:`~dagfetch.diffs.model.DiffLimits`. Nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from dagfetch.cache import VersionCache, VersionRecord
from dagfetch.cache.layout import CURRENT
from dagfetch.diffs.lines import is_binary, line_hunks
from dagfetch.diffs.model import DiffLimits, FileDiff, VersionDiff
from dagfetch.errors import VersionNotFoundError
from dagfetch.models import CachedFile

#: The shortest version-id prefix accepted (git's default abbreviation is 7).
MIN_PREFIX = 4


def resolve_version_id(cache: VersionCache, repo_id: str, ref: str) -> str:
    """The version id ``ref`` names: ``current``, a whole id, or a unique prefix of at least
    :data:`MIN_PREFIX` characters (what a user copies from ``dagfetch versions``)."""
    if ref == CURRENT:
        current = cache.current_id(repo_id)
        if current is None:
            raise VersionNotFoundError(f"{repo_id}: nothing synced yet, so no current version")
        return current
    known = [record.version.version_id for record in cache.all_records(repo_id)]
    if ref in known:
        return ref
    matches = [version_id for version_id in known if version_id.startswith(ref)]
    if len(ref) >= MIN_PREFIX and len(matches) == 1:
        return matches[0]
    if len(matches) > 1 and len(ref) >= MIN_PREFIX:
        shown = ", ".join(sorted(matches)[:5])
        raise VersionNotFoundError(f"{repo_id}: {ref!r} names several versions ({shown}); "
                                   "give more of the id")
    hint = " (give at least 4 characters of an id)" if matches else ""
    raise VersionNotFoundError(
        f"{repo_id}: no version {ref!r}{hint}; `dagfetch versions {repo_id}` lists them")


# -- comparing -----------------------------------------------------------------------------------

def compare_versions(
    cache: VersionCache,
    repo_id: str,
    old: str,
    new: str,
    *,
    patch: bool = True,
    limits: DiffLimits | None = None,
) -> VersionDiff:
    """The diff from version ``old`` to version ``new`` (ids, prefixes or ``current``)."""
    limits = limits or DiffLimits()
    old_id = resolve_version_id(cache, repo_id, old)
    new_id = resolve_version_id(cache, repo_id, new)
    old_record = cache.record(repo_id, old_id)
    new_record = cache.record(repo_id, new_id)
    assert old_record is not None and new_record is not None  # resolved from the records
    files = list(changed_files(old_record.version.files, new_record.version.files))
    if patch and files:
        old_source = ContentSource(cache, old_record)
        new_source = ContentSource(cache, new_record)
        reader = _Reader(limits)
        files = [_with_hunks(f, old_source, new_source, reader, limits) for f in files]
    return VersionDiff(repo_id, old_id, new_id, tuple(files), patched=patch)


def changed_files(old: Sequence[CachedFile], new: Sequence[CachedFile]) -> Iterable[FileDiff]:
    """The paths that differ between two file lists, sorted by path, from their recorded
    sha256 (and kind and link target): no content is read."""
    before = {f.path: f for f in old}
    after = {f.path: f for f in new}
    deleted = {p: f for p, f in before.items() if p not in after}
    added = {p: f for p, f in after.items() if p not in before}
    # a rename: a deleted and an added path with the same content (each path used once)
    by_content: dict[tuple[str, str, str | None], list[str]] = {}
    for path in sorted(deleted):
        by_content.setdefault(_content_key(deleted[path]), []).append(path)
    renamed: dict[str, str] = {}  # new path -> old path
    for path in sorted(added):
        candidates = by_content.get(_content_key(added[path]))
        if candidates:
            renamed[path] = candidates.pop(0)
    renamed_from = set(renamed.values())
    out: list[FileDiff] = []
    for path in sorted(before.keys() | after.keys()):
        if path in renamed:
            out.append(FileDiff("renamed", path, before[renamed[path]], after[path],
                                old_path=renamed[path]))
        elif path in added:
            out.append(FileDiff("added", path, None, after[path]))
        elif path in deleted:
            if path not in renamed_from:
                out.append(FileDiff("deleted", path, before[path], None))
        elif _content_key(before[path]) != _content_key(after[path]):
            out.append(FileDiff("modified", path, before[path], after[path]))
    return out


def _content_key(f: CachedFile) -> tuple[str, str, str | None]:
    return (f.kind, f.sha256, f.target)


class ContentSource:
    """Where one version's file contents are read from, without writing anything: its tree
    when it is materialized, else the cache's content store (a stored version's contents are
    kept by sha256); an evicted version has neither."""

    def __init__(self, cache: VersionCache, record: VersionRecord) -> None:
        self.cache = cache
        self.evicted = record.evicted
        self.tree = Path(record.version.path)
        self._root: str | None = None  # the tree's real path, once it is needed

    def path_of(self, f: CachedFile) -> Path | None:
        """The file holding ``f``'s bytes (inside the version's tree when there is one), or
        None when the cache no longer has them. ``f`` must come from this version's record."""
        if self.evicted:
            return None
        if self.tree.is_dir():
            full = self.tree / f.path
            # the record's paths were checked when published; this also refuses a tree whose
            # files were replaced by links leading out of it
            if self._root is None:
                self._root = os.path.realpath(self.tree)
            if os.path.commonpath([self._root, os.path.realpath(full)]) != self._root:
                return None
            return full
        stored = self.cache.layout.object_path(f.sha256)
        return stored if stored.is_file() else None


class _Reader:
    """Reads file contents for one diff, within its byte budget."""

    def __init__(self, limits: DiffLimits) -> None:
        self.limits = limits
        self.spent = 0
        self.lines = 0  # lines of hunks made so far

    def read(self, source: ContentSource, f: CachedFile | None) -> bytes | str:
        """The file's bytes, or a reason (str) they cannot be shown."""
        if f is None:
            return b""
        if f.kind == "symlink":
            return (f.target or "").encode()  # git shows a link's target as its content
        if f.size > self.limits.max_file_bytes:
            return f"not shown: larger than {_size(self.limits.max_file_bytes)}"
        if self.spent + f.size > self.limits.max_total_bytes:
            return f"not shown: the diff passed {_size(self.limits.max_total_bytes)} of content"
        path = source.path_of(f)
        if path is None:
            return "content not in the cache (the version was evicted)"
        try:
            data = path.read_bytes()
        except OSError as exc:
            return f"content not readable ({exc.strerror})"
        self.spent += len(data)
        return data


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def _with_hunks(
    f: FileDiff, old_source: ContentSource, new_source: ContentSource, reader: _Reader,
    limits: DiffLimits,
) -> FileDiff:
    if f.status == "renamed":
        return attrs.evolve(f, insertions=0, deletions=0)  # same content: nothing to show
    old_data = reader.read(old_source, f.old)
    new_data = reader.read(new_source, f.new)
    for data in (old_data, new_data):
        if isinstance(data, str):
            return attrs.evolve(f, skipped=data)
    assert isinstance(old_data, bytes) and isinstance(new_data, bytes)
    if is_binary(old_data) or is_binary(new_data):
        return attrs.evolve(f, binary=True)
    if reader.lines >= limits.max_lines:
        return attrs.evolve(f, skipped=f"not shown: the diff passed {limits.max_lines} lines")
    hunks = line_hunks(old_data.decode("utf-8"), new_data.decode("utf-8"), limits.context)
    reader.lines += sum(len(h.lines) for h in hunks)
    insertions = sum(1 for h in hunks for line in h.lines if line.kind == "added")
    deletions = sum(1 for h in hunks for line in h.lines if line.kind == "deleted")
    return attrs.evolve(f, hunks=tuple(hunks), insertions=insertions, deletions=deletions)


