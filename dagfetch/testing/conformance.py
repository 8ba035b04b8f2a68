"""The shared suite. Every test talks to the backend through the public API, as a user would."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dagfetch.defaults import registry_for
from dagfetch.errors import (
    DagfetchError,
    FetchError,
    UnsafePathError,
    VersionNotFoundError,
    VersionUnavailableError,
)
from dagfetch.manifest import url_scheme
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import (
    HELD_CONTENTS,
    Capabilities,
    Fetcher,
    FetcherFactory,
    FileDone,
    HeldContents,
    Source,
    Written,
)
from dagfetch.registry import Registry
from dagfetch.testing.remote import Remote
from dagfetch.testing.workspace import one_repository
from dagfetch.workspace import Workspace

REPO = "conf"


class CountingFetcher:
    """Wraps a real fetcher and records what it was asked to download. ``fail_after``
    makes ``fetch`` raise after that many files (to test a sync dying half-way)."""

    def __init__(self, inner: Fetcher, log: list[str], fail_after: int | None = None) -> None:
        self.inner = inner
        self.log = log
        self.fail_after = fail_after
        self.capabilities: Capabilities = inner.capabilities

    def list(self) -> Listing:
        return self.inner.list()

    def list_version(self, version_id: str) -> Listing:
        return self.inner.list_version(version_id)  # type: ignore[attr-defined, no-any-return]

    def use_held_contents(self, read: HeldContents) -> None:
        take = getattr(self.inner, HELD_CONTENTS, None)
        if callable(take):
            take(read)

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> Written | None:
        if self.fail_after is not None:
            self.inner.fetch(list(files)[: self.fail_after], dest, on_file_done)
            raise FetchError("injected failure half-way through the download")
        self.log.extend(f.path for f in files)
        return self.inner.fetch(files, dest, on_file_done)

    def close(self) -> None:
        self.inner.close()


def counting_registry(scheme: str, log: list[str], fail: dict[str, int | None]) -> Registry:
    real = registry_for()  # dagfetch's defaults, as a Workspace would have them
    inner: FetcherFactory = real.resolve(scheme)

    def factory(source: Source) -> Fetcher:
        return CountingFetcher(inner(source), log, fail.get("after"))

    registry = Registry()
    registry.register(scheme, factory)
    return registry


class FetcherConformance:
    """Subclass and provide a ``remote`` fixture. Tests a capability only where the backend
    or the remote declares it; a skip says which declaration is missing."""

    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture
    def remote(self) -> Iterator[Remote]:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError("provide a `remote` fixture")

    @pytest.fixture
    def downloads(self) -> list[str]:
        return []

    @pytest.fixture
    def failure(self) -> dict[str, int | None]:
        return {"after": None}

    @pytest.fixture
    def make_workspace(
        self, remote: Remote, tmp_path: Path, downloads: list[str], failure: dict[str, int | None]
    ) -> Callable[..., Workspace]:
        def make(cache: str = "cache", **fields: Any) -> Workspace:
            registry = counting_registry(url_scheme(remote.url), downloads, failure)
            return one_repository(remote, tmp_path, repo_id=REPO, cache=cache,
                                  registry=registry, **fields)

        return make

    @pytest.fixture
    def ws(self, make_workspace: Callable[..., Workspace]) -> Workspace:
        return make_workspace()

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def files_of(path: Path) -> dict[str, bytes]:
        out = {}
        for dirpath, _, names in os.walk(path):
            for name in names:
                full = Path(dirpath) / name
                out[full.relative_to(path).as_posix()] = full.read_bytes()
        return out

    @staticmethod
    def seed(remote: Remote, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            remote.write(path, data)
        remote.push()

    BASE: ClassVar[dict[str, bytes]] = {
        "dag_a.py": b"# dag a\n",
        "dag_b.py": b"# dag b\n" * 10,
        "lib/__init__.py": b"",
        "lib/utils.py": b"X = 1\n",
    }

    # -- listing ------------------------------------------------------------------------------

    def test_capabilities_are_declared(self, ws: Workspace, remote: Remote) -> None:
        self.seed(remote, self.BASE)
        fetcher = ws.fetcher_for(ws.manifest.get(REPO))
        try:
            assert isinstance(fetcher.capabilities, Capabilities)
        finally:
            fetcher.close()

    def test_listing_has_paths_sizes_and_tokens(self, ws: Workspace, remote: Remote) -> None:
        self.seed(remote, self.BASE)
        fetcher = ws.fetcher_for(ws.manifest.get(REPO))
        try:
            listing = fetcher.list()
        finally:
            fetcher.close()
        by_path = listing.by_path()
        assert set(by_path) == set(self.BASE)
        for path, data in self.BASE.items():
            assert by_path[path].size in (len(data), -1), path
            assert by_path[path].token, path

    # -- syncing ------------------------------------------------------------------------------

    def test_sync_publishes_exact_bytes_read_only(self, ws: Workspace, remote: Remote) -> None:
        self.seed(remote, self.BASE)
        result = ws.sync_one(REPO)
        assert result.changed and result.version_id
        path = ws.path(REPO)
        assert self.files_of(path) == self.BASE
        assert not os.access(path / "dag_a.py", os.W_OK) or os.geteuid() == 0
        assert (path / "dag_a.py").stat().st_mode & 0o222 == 0

    def test_no_change_sync_downloads_nothing(
        self, ws: Workspace, remote: Remote, downloads: list[str]
    ) -> None:
        self.seed(remote, self.BASE)
        first = ws.sync_one(REPO)
        downloads.clear()
        second = ws.sync_one(REPO)
        assert downloads == []
        assert not second.changed and second.version_id == first.version_id

    def test_one_change_downloads_one_file_and_links_the_rest(
        self, ws: Workspace, remote: Remote, downloads: list[str]
    ) -> None:
        self.seed(remote, self.BASE)
        ws.sync_one(REPO)
        old = ws.path(REPO)
        downloads.clear()
        self.seed(remote, {"dag_b.py": b"# dag b, changed\n"})
        result = ws.sync_one(REPO)
        new = ws.path(REPO)
        assert result.changed and new != old
        assert downloads == ["dag_b.py"]
        assert (new / "dag_b.py").read_bytes() == b"# dag b, changed\n"
        assert (old / "dag_b.py").read_bytes() == self.BASE["dag_b.py"]
        for unchanged in ("dag_a.py", "lib/utils.py"):
            assert (new / unchanged).stat().st_ino == (old / unchanged).stat().st_ino

    def test_added_and_deleted_files(self, ws: Workspace, remote: Remote) -> None:
        self.seed(remote, self.BASE)
        ws.sync_one(REPO)
        remote.delete("dag_a.py")
        remote.write("new/dag_c.py", b"# c\n")
        remote.push()
        ws.sync_one(REPO)
        expected = {k: v for k, v in self.BASE.items() if k != "dag_a.py"}
        expected["new/dag_c.py"] = b"# c\n"
        assert self.files_of(ws.path(REPO)) == expected

    def test_same_content_gets_same_version_id_everywhere(
        self, make_workspace: Callable[..., Workspace], remote: Remote
    ) -> None:
        self.seed(remote, self.BASE)
        a = make_workspace("cache-a").sync_one(REPO)
        b = make_workspace("cache-b").sync_one(REPO)
        assert a.version_id == b.version_id

    def test_subdir_takes_one_folder(
        self, make_workspace: Callable[..., Workspace], remote: Remote
    ) -> None:
        self.seed(remote, {"dags/x.py": b"x\n", "dags/sub/y.py": b"y\n", "other/z.py": b"z\n"})
        ws = make_workspace(subdir="dags")
        ws.sync_one(REPO)
        assert self.files_of(ws.path(REPO)) == {"x.py": b"x\n", "sub/y.py": b"y\n"}

    def test_include_and_exclude_globs(
        self, make_workspace: Callable[..., Workspace], remote: Remote
    ) -> None:
        self.seed(remote, {**self.BASE, "README.md": b"doc", "tests/test_x.py": b"t"})
        ws = make_workspace(include=["*.py"], exclude=["tests/*"])
        ws.sync_one(REPO)
        assert set(self.files_of(ws.path(REPO))) == set(self.BASE)

    def test_failed_download_keeps_current_and_next_sync_recovers(
        self, ws: Workspace, remote: Remote, failure: dict[str, int | None]
    ) -> None:
        self.seed(remote, self.BASE)
        good = ws.sync_one(REPO)
        self.seed(remote, {"dag_a.py": b"# a2\n", "dag_b.py": b"# b2\n"})
        failure["after"] = 1
        with pytest.raises(FetchError, match="injected"):
            ws.sync_one(REPO)
        assert ws.current(REPO) is not None
        assert ws.cache.current_id(REPO) == good.version_id
        assert ws.status()[0].last_error is not None
        staging = ws.cache.layout.staging(REPO)
        assert not staging.exists() or not any(staging.iterdir())
        failure["after"] = None
        result = ws.sync_one(REPO)
        assert result.changed
        assert (ws.path(REPO) / "dag_a.py").read_bytes() == b"# a2\n"
        assert ws.status()[0].last_error is None

    # -- safety ----------------------------------------------------------------------------

    def test_escaping_paths_are_refused_by_name(self, ws: Workspace, remote: Remote) -> None:
        self.seed(remote, self.BASE)
        good = ws.sync_one(REPO)
        if getattr(remote, "unsafe_names", False):
            remote.write("../escaped.py", b"evil")
            bad = "../escaped.py"
        elif getattr(remote, "symlinks", False):
            remote.symlink("evil.py", "../../../../etc/passwd")  # type: ignore[attr-defined]
            bad = "evil.py"
        else:
            pytest.skip("this remote can store neither '..' names nor symlinks")
        remote.push()
        with pytest.raises(UnsafePathError) as caught:
            ws.sync_one(REPO)
        assert bad in str(caught.value)
        assert ws.cache.current_id(REPO) == good.version_id

    # -- versions ----------------------------------------------------------------------------

    def test_evicted_version_is_refetched_or_reported(
        self, make_workspace: Callable[..., Workspace], remote: Remote
    ) -> None:
        ws = make_workspace(keep_versions=1)
        self.seed(remote, self.BASE)
        first = ws.sync_one(REPO)
        self.seed(remote, {"dag_a.py": b"# a, second version\n"})
        second = ws.sync_one(REPO)
        assert first.version_id and second.version_id and first.version_id != second.version_id
        report = ws.gc()
        assert (REPO, first.version_id) in report.evicted
        with pytest.raises(VersionNotFoundError):
            ws.cache.path(REPO, first.version_id)
        fetcher = ws.fetcher_for(ws.manifest.get(REPO))
        caps = fetcher.capabilities
        fetcher.close()
        if caps.versioned or caps.named_versions:
            path = ws.path(REPO, first.version_id)
            assert self.files_of(path) == self.BASE
            assert ws.cache.current_id(REPO) == second.version_id
        else:
            with pytest.raises(VersionUnavailableError, match="keeps no history"):
                ws.path(REPO, first.version_id)

    def test_missing_remote_fails_with_the_url(
        self, make_workspace: Callable[..., Workspace], remote: Remote
    ) -> None:
        missing = getattr(remote, "missing_url", None)
        if missing is None:
            pytest.skip("the remote fixture declares no missing_url")
        ws = make_workspace(url=missing)
        with pytest.raises(DagfetchError) as caught:
            ws.sync_one(REPO)
        assert ws.cache.current_id(REPO) is None
        assert "conf" in str(caught.value) or missing.split("://")[-1][:20] in str(caught.value)
