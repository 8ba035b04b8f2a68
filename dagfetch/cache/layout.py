"""Where things live under the cache root::

    <root>/
      .dagfetch/objects/ab/cdef...          file contents, named by sha256, read-only
      .dagfetch/staging/<repo_id>/<tmp>/     a sync in progress (removed when it ends; a killed
                                             one's by the next sync)
      .dagfetch/locks/repo-<repo_id>.lock    one sync or gc of a repository at a time
      <repo_id>/<version_id>/...             a published version: read-only hard links
      <repo_id>/current -> <version_id>      switched by an atomic rename
      <repo_id>/.meta/versions/<id>.json     what each version holds and where it came from
      <repo_id>/.meta/state.json             last check, last success, last error
      <repo_id>/.meta/pins/<id>/<holder>     versions callers asked to keep
      <repo_id>/.meta/trees/<id>             "this version's tree is complete" (see trees.py)
      <repo_id>/.meta/trash/                 trees taken out of sight, being deleted
      <repo_id>/.meta/quarantine/            metadata that could not be read, moved aside
      <repo_id>/.meta/work/                  the backend's private folder (git's object store)

Repository ids cannot start with ``.``, so ``.dagfetch`` never clashes with one.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import attrs

from dagfetch.errors import CacheError

VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CURRENT = "current"


def default_cache_root() -> Path:
    """``$DAGFETCH_HOME``, else the per-user cache folder (``~/.cache/dagfetch`` on Linux)."""
    env = os.environ.get("DAGFETCH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only without DAGFETCH_HOME or --home: it costs start-up

    return Path(platformdirs.user_cache_dir("dagfetch", appauthor=False))


def check_version_id(version_id: str) -> str:
    if not VERSION_ID.match(version_id) or version_id == CURRENT:
        raise CacheError(f"{version_id!r} is not a valid version id")
    return version_id


@attrs.frozen
class CacheLayout:
    root: Path

    @property
    def internal(self) -> Path:
        return self.root / ".dagfetch"

    def ensure_root(self) -> None:
        """Create the cache root, readable by its owner only (``0700``): version trees are
        made world-readable (``0444``/``0555``) whatever the source's modes, so the root is
        what keeps a private file of a repository private. A root that exists keeps its
        mode: create it yourself, with the mode you want, to share a cache."""
        if not self.root.is_dir():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it first
                self.root.mkdir(mode=0o700)

    @property
    def objects(self) -> Path:
        return self.internal / "objects"

    def object_path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / sha256[2:]

    def staging(self, repo_id: str) -> Path:
        return self.internal / "staging" / repo_id

    def lock(self, name: str) -> Path:
        return self.internal / "locks" / f"{name}.lock"

    def repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def version(self, repo_id: str, version_id: str) -> Path:
        return self.repo(repo_id) / check_version_id(version_id)

    def current_link(self, repo_id: str) -> Path:
        return self.repo(repo_id) / CURRENT

    def meta(self, repo_id: str) -> Path:
        return self.repo(repo_id) / ".meta"

    def record(self, repo_id: str, version_id: str) -> Path:
        return self.meta(repo_id) / "versions" / f"{check_version_id(version_id)}.json"

    def records(self, repo_id: str) -> Path:
        return self.meta(repo_id) / "versions"

    def state(self, repo_id: str) -> Path:
        return self.meta(repo_id) / "state.json"

    def pins(self, repo_id: str, version_id: str | None = None) -> Path:
        base = self.meta(repo_id) / "pins"
        return base / check_version_id(version_id) if version_id else base

    def tree_marker(self, repo_id: str, version_id: str) -> Path:
        return self.meta(repo_id) / "trees" / check_version_id(version_id)

    def trash(self, repo_id: str) -> Path:
        return self.meta(repo_id) / "trash"

    def quarantine(self, repo_id: str) -> Path:
        return self.meta(repo_id) / "quarantine"

    def work_dir(self, repo_id: str) -> Path:
        return self.meta(repo_id) / "work"
