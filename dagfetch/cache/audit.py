"""Checking the object store against the records: ``dagfetch verify``.

Every object a kept version uses is hashed once (a truncated, grown or flipped object, or one
that is gone, is *bad*), and so is every file of a materialized tree that is not a hard link
to its object (a copy, on file systems without links). Each bad file is reported with the
repository, version and path that use it. :meth:`Auditor.drop_bad` removes what is bad so that
nothing reuses it: the bad objects and the trees that hold them; the caller
(:meth:`dagfetch.Workspace.verify`) then fetches the versions again or evicts them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import attrs

from dagfetch.cache.layout import CacheLayout
from dagfetch.cache.locks import CacheLocks
from dagfetch.cache.objects import ObjectStore, hash_file
from dagfetch.cache.records import RecordStore
from dagfetch.cache.trees import is_complete, retire_tree
from dagfetch.models import Version


@attrs.frozen
class BadFile:
    repo_id: str
    version_id: str
    path: str
    sha256: str
    problem: str  # "missing", "12 bytes, the record says 10", "its content hashes to ..."

    def to_json(self) -> dict[str, str]:
        return attrs.asdict(self)


@attrs.frozen
class VerifyReport:
    checked_objects: int
    checked_versions: int
    bad: tuple[BadFile, ...]
    repaired: tuple[tuple[str, str], ...] = ()  # versions fetched again, whole
    dropped: tuple[tuple[str, str], ...] = ()  # versions evicted: they could not come back

    @property
    def damaged_versions(self) -> list[tuple[str, str]]:
        return sorted({(b.repo_id, b.version_id) for b in self.bad})

    @property
    def ok(self) -> bool:
        """Nothing bad is left: nothing was found, or all of it was repaired or dropped."""
        done = set(self.repaired) | set(self.dropped)
        return all(v in done for v in self.damaged_versions)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked_objects": self.checked_objects,
            "checked_versions": self.checked_versions,
            "bad": [b.to_json() for b in self.bad],
            "repaired": [list(v) for v in self.repaired],
            "dropped": [list(v) for v in self.dropped],
        }


@attrs.frozen
class Auditor:
    layout: CacheLayout
    objects: ObjectStore
    records: RecordStore
    locks: CacheLocks

    def check(self, repo_ids: Iterable[str]) -> VerifyReport:
        """Hash every object (and unlinked tree file) of the kept versions of ``repo_ids``."""
        users: dict[str, list[tuple[Version, str, int]]] = defaultdict(list)
        versions = 0
        for repo_id in repo_ids:
            for record in self.records.all(repo_id):
                if not record.present:
                    continue
                versions += 1
                for f in record.version.files:
                    if f.kind == "file":
                        users[f.sha256].append((record.version, f.path, f.size))
        bad: list[BadFile] = []
        for sha, uses in sorted(users.items()):
            problem = self._object_problem(sha, uses[0][2])
            for version, path, size in uses:
                where = problem or self._tree_problem(version, path, sha, size)
                if where:
                    bad.append(BadFile(version.repo_id, version.version_id, path, sha, where))
        return VerifyReport(len(users), versions, tuple(bad))

    def _object_problem(self, sha: str, size: int) -> str | None:
        return _content_problem(self.layout.object_path(sha), sha, size)

    def _tree_problem(self, version: Version, path: str, sha: str, size: int) -> str | None:
        """A materialized tree's file that is not the object itself (a copy) is checked too."""
        marker = self.layout.tree_marker(version.repo_id, version.version_id)
        if not is_complete(marker, version.path):
            return None
        in_tree = Path(version.path) / path
        try:
            if os.stat(in_tree).st_ino == os.stat(self.layout.object_path(sha)).st_ino:
                return None
        except OSError:
            return "missing from the version's tree"
        problem = _content_problem(in_tree, sha, size)
        return f"in the version's tree: {problem}" if problem else None

    def drop_bad(self, report: VerifyReport) -> None:
        """Remove the bad objects and the trees that use them, so nothing links them again.
        Takes each repository's lock, then the objects lock."""
        by_repo: dict[str, set[str]] = defaultdict(set)
        for b in report.bad:
            by_repo[b.repo_id].add(b.version_id)
        shas = {b.sha256 for b in report.bad}
        for repo_id, version_ids in sorted(by_repo.items()):
            with self.locks.repo(repo_id), self.locks.objects():
                for sha in shas:
                    self.objects.remove(sha)
                for version_id in sorted(version_ids):
                    retire_tree(
                        self.layout.version(repo_id, version_id),
                        self.layout.tree_marker(repo_id, version_id),
                        self.layout.trash(repo_id),
                    )


def _content_problem(path: Path, sha: str, size: int) -> str | None:
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if actual != size:
        return f"{actual} bytes, the record says {size}"
    digest, _ = hash_file(path)
    if digest != sha:
        return f"its content hashes to {digest}, the record says {sha}"
    return None
