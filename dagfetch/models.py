"""Value types that travel between the manifest, fetchers, the cache and callers.

All are frozen attrs classes: hashable, comparable, cheap, and safe to share between threads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

FileKind = Literal["file", "symlink"]


@attrs.frozen
class RemoteFile:
    """One file as the remote describes it, before anything is downloaded.

    ``path`` is relative to the repository root (after ``subdir``), ``/``-separated.
    ``token`` is the backend's change token (ETag, object version, mtime, git blob id):
    equal tokens promise equal content. ``digest`` is an optional ``algo:hex`` the cache
    verifies after download (``md5``, ``sha1``, ``sha256``, ``git-blob``).
    For a symlink, ``target`` is its target as stored remotely.
    ``extra`` carries backend data needed to fetch this exact file again (S3 VersionId, ...).
    """

    path: str
    size: int
    token: str
    digest: str | None = None
    kind: FileKind = "file"
    target: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)

    def same_content_as(self, other: RemoteFile) -> bool:
        return (self.path, self.size, self.token, self.kind, self.target) == (
            other.path,
            other.size,
            other.token,
            other.kind,
            other.target,
        )


@attrs.frozen
class Listing:
    """What a fetcher says the remote holds right now (or at ``version_id``).

    ``version_id`` is the backend's own id for the whole repository state, when it has one
    (a git commit). Without one, the cache names the version by a hash of its content.
    """

    files: tuple[RemoteFile, ...]
    version_id: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)

    @classmethod
    def of(
        cls, files: Iterable[RemoteFile], version_id: str | None = None, **extra: str
    ) -> Listing:
        return cls(tuple(sorted(files, key=lambda f: f.path)), version_id, extra)

    def by_path(self) -> dict[str, RemoteFile]:
        return {f.path: f for f in self.files}

    def fingerprint(self) -> str:
        """A stable hash of paths and change tokens: equal fingerprints mean nothing changed."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(f"{f.path}\0{f.size}\0{f.token}\0{f.kind}\0{f.target or ''}\n".encode())
        return h.hexdigest()


@attrs.frozen
class CachedFile:
    """A file of a published version: what the remote said, plus the sha256 of its bytes."""

    path: str
    size: int
    token: str
    sha256: str
    kind: FileKind = "file"
    target: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "token": self.token,
            "sha256": self.sha256,
        }
        if self.kind != "file":
            data["kind"] = self.kind
            data["target"] = self.target
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CachedFile:
        return cls(
            path=data["path"],
            size=int(data["size"]),
            token=data["token"],
            sha256=data["sha256"],
            kind=data.get("kind", "file"),
            target=data.get("target"),
            extra=dict(data.get("extra", {})),
        )

    def as_remote(self) -> RemoteFile:
        return RemoteFile(
            self.path, self.size, self.token, None, self.kind, self.target, self.extra
        )


@attrs.frozen
class Version:
    """A published, immutable version of one repository in the cache.

    ``refetchable``: the backend can fetch this exact content again (a git commit, a versioned
    bucket), so gc may evict it and a later ``path()`` brings it back.
    """

    repo_id: str
    version_id: str
    path: str
    source_url: str
    fetched_at: datetime
    files: tuple[CachedFile, ...]
    backend_version: str | None = None
    fingerprint: str = ""
    refetchable: bool = False

    @property
    def history(self) -> bool:
        """The name 0.1.0 gave :attr:`refetchable`; kept so existing callers keep working."""
        return self.refetchable

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@attrs.frozen
class SyncResult:
    """What one repository's sync did."""

    repo_id: str
    version_id: str | None
    changed: bool
    downloaded: int = 0
    downloaded_bytes: int = 0
    reused: int = 0
    previous_version_id: str | None = None
    error: str | None = None
    config_error: bool = False  # the error is the repository's configuration (exit code 2)

    @property
    def ok(self) -> bool:
        return self.error is None
