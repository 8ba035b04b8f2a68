"""The sync's policy, against an in-memory fetcher: what it refuses to publish, and why.

The cache verifies and publishes; the checks that depend on what the sync asked for (an
immutable source must not change, a refetch must give back the version asked for) are made
by the sync, between the two, so a refused version leaves nothing behind: no tree, no record,
no object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from dagfetch.cache import VersionCache
from dagfetch.errors import ImmutableSourceChanged, VerificationError, VersionNotFoundError
from dagfetch.manifest import RepositorySpec
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.sync import Syncer


class MemoryFetcher(BaseFetcher):
    """Serves ``files``; ``served`` overrides what a download returns (a remote that lies)."""

    def __init__(self, files: dict[str, bytes], *, versioned: bool = False) -> None:
        super().__init__(Source("r", "mem://r"))
        self.capabilities = Capabilities(versioned=versioned)
        self.files = files
        self.served: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def list(self) -> Listing:
        return Listing.of(
            RemoteFile(path, len(data), hashlib.sha1(data, usedforsecurity=False).hexdigest())
            for path, data in self.files.items()
        )

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        for f in files:
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.served.get(f.path, self.files[f.path]))
            self.fetched.append(f.path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _trees(cache: VersionCache) -> list[str]:
    return sorted(p.name for p in cache.layout.repo("r").iterdir() if p.name != ".meta")


def test_an_immutable_source_that_changed_is_refused_before_publishing(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    spec = RepositorySpec("r", "mem://r", immutable=True)
    fetcher = MemoryFetcher({"dag.py": b"first\n", "lib.py": b"lib\n"})
    first = Syncer(cache).sync(spec, fetcher)
    fetcher.files["dag.py"] = b"second\n"
    with pytest.raises(ImmutableSourceChanged, match="declared immutable"):
        Syncer(cache).sync(spec, fetcher)
    assert cache.current_id("r") == first.version_id
    assert _trees(cache) == sorted(["current", first.version_id or ""])
    assert [r.version.version_id for r in cache.all_records("r")] == [first.version_id]
    assert not cache.objects.has(_sha(b"second\n"))  # verified, refused, never stored
    assert not any(cache.layout.staging("r").iterdir())
    assert "immutable" in cache.state("r")["last_error"]["message"]


def test_an_unchanged_immutable_source_syncs_as_usual(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    spec = RepositorySpec("r", "mem://r", immutable=True)
    fetcher = MemoryFetcher({"dag.py": b"first\n"})
    first = Syncer(cache).sync(spec, fetcher)
    again = Syncer(cache).sync(spec, fetcher)
    assert again.version_id == first.version_id and not again.changed


def _evicted(tmp_path: Path) -> tuple[VersionCache, RepositorySpec, MemoryFetcher, str]:
    """A versioned remote whose first version gc evicted."""
    cache = VersionCache(tmp_path / "cache")
    spec = RepositorySpec("r", "mem://r")
    fetcher = MemoryFetcher({"dag.py": b"v1\n", "lib.py": b"lib\n"}, versioned=True)
    old = Syncer(cache).sync(spec, fetcher).version_id
    assert old is not None
    fetcher.files["dag.py"] = b"v2\n"
    Syncer(cache).sync(spec, fetcher)
    cache.gc({"r": 1})
    found = cache.record("r", old)
    assert found is not None and found.evicted and found.version.refetchable
    return cache, spec, fetcher, old


def test_a_refetch_gives_back_the_version_asked_for(tmp_path: Path) -> None:
    cache, spec, fetcher, old = _evicted(tmp_path)
    fetcher.served["dag.py"] = b"v1\n"  # the remote still holds the old object version
    version = Syncer(cache).materialize(spec, fetcher, old)
    assert version.version_id == old
    assert (Path(version.path) / "dag.py").read_bytes() == b"v1\n"
    found = cache.record("r", old)
    assert found is not None and found.present


def test_a_refetch_of_other_content_is_refused_and_publishes_nothing(tmp_path: Path) -> None:
    cache, spec, fetcher, old = _evicted(tmp_path)
    # same size, other bytes: verify passes (no digest), the version id does not
    fetcher.served["dag.py"] = b"vX\n"
    with pytest.raises(VerificationError, match="no longer holds that version exactly"):
        Syncer(cache).materialize(spec, fetcher, old)
    found = cache.record("r", old)
    assert found is not None and found.evicted  # still evicted, not replaced by the wrong bytes
    assert old not in _trees(cache)
    assert not cache.objects.has(_sha(b"vX\n"))
    with pytest.raises(VersionNotFoundError, match="evicted"):
        cache.path("r", old)


def test_a_download_of_the_wrong_size_fails_the_sync_and_keeps_current(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    spec = RepositorySpec("r", "mem://r")
    fetcher = MemoryFetcher({"dag.py": b"first\n"})
    first = Syncer(cache).sync(spec, fetcher)
    fetcher.files["dag.py"] = b"second\n"
    fetcher.served["dag.py"] = b"truncated"[:3]
    with pytest.raises(VerificationError, match="got 3 bytes, the listing said 7"):
        Syncer(cache).sync(spec, fetcher)
    assert cache.current_id("r") == first.version_id
    assert _trees(cache) == sorted(["current", first.version_id or ""])
    assert not any(cache.layout.staging("r").iterdir())


class VersionNamingFetcher(MemoryFetcher):
    """Names its version (``version``) before listing, as git names the ref's commit."""

    def __init__(self, files: dict[str, bytes], version: str) -> None:
        super().__init__(files, versioned=True)
        self.version = version
        self.listings = 0

    def remote_version(self) -> str:
        return self.version

    def list(self) -> Listing:
        self.listings += 1
        listed = super().list()
        return Listing.of(listed.files, self.version)


def test_a_version_named_before_listing_ends_a_no_change_sync_there(tmp_path: Path) -> None:
    cache = VersionCache(tmp_path / "cache")
    spec = RepositorySpec("r", "mem://r")
    fetcher = VersionNamingFetcher({"dag.py": b"v1\n"}, "a" * 40)
    first = Syncer(cache).sync(spec, fetcher)
    assert first.changed and fetcher.listings == 1
    again = Syncer(cache).sync(spec, fetcher)
    assert not again.changed and again.version_id == first.version_id
    assert fetcher.listings == 1  # no listing: the named version is the current one
    assert cache.state("r")["last_check_at"]
    fetcher.files["dag.py"], fetcher.version = b"v2\n", "b" * 40
    moved = Syncer(cache).sync(spec, fetcher)
    assert moved.changed and fetcher.listings == 2
    assert (cache.path("r") / "dag.py").read_bytes() == b"v2\n"
