"""The registry reads real entry points: throwaway .dist-info folders on sys.path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagfetch.backends.fsspec import FsspecFetcher
from dagfetch.errors import (
    BackendNotInstalled,
    ManifestError,
    RegistryError,
    SchemeConflictError,
    UnknownSchemeError,
)
from dagfetch.manifest import parse_manifest
from dagfetch.protocol import Source
from dagfetch.registry import GROUP, Registry
from dagfetch.workspace import Workspace
from tests.distfactory import installed

PLUGIN = """
import sys
from dagfetch.backends.fsspec import FsspecFetcher
IMPORTED = True
class {cls}(FsspecFetcher):
    def __init__(self, source):
        from dagfetch.protocol import Source
        super().__init__(Source(source.repo_id, "file://" + source.url.split("://", 1)[1]))
"""


def test_builtin_schemes_come_from_dagfetchs_own_entry_points() -> None:
    providers = Registry().providers()
    for scheme in ("file", "memory", "s3", "gs", "az", "http", "https"):
        assert providers[scheme][0].distribution == "dagfetch"
    assert Registry().resolve("file") is FsspecFetcher


def test_plugins_load_lazily_on_first_use(tmp_path: Path) -> None:
    with installed(
        tmp_path / "site",
        "lazy-plugin",
        "1.2.3",
        {GROUP: {"lazy": "lazymod:Lazy"}},
        {"lazymod": PLUGIN.format(cls="Lazy")},
    ):
        registry = Registry()
        assert "lazy" in registry.schemes()
        assert registry.providers()["lazy"][0].describe() == "lazy-plugin 1.2.3 (lazymod:Lazy)"
        assert "lazymod" not in sys.modules  # listing schemes imports nothing
        factory = registry.resolve("lazy")
        assert "lazymod" in sys.modules and factory.__name__ == "Lazy"


@pytest.fixture
def two_claimants(tmp_path: Path) -> Iterator[None]:
    """Two distributions, alpha-store 1.0 and beta-store 2.0, both claiming scheme 'dup'."""
    site = tmp_path / "site"
    with (
        installed(
            site,
            "alpha-store",
            "1.0",
            {GROUP: {"dup": "alphamod:A"}},
            {"alphamod": PLUGIN.format(cls="A")},
        ),
        installed(
            site,
            "beta-store",
            "2.0",
            {GROUP: {"dup": "betamod:B"}},
            {"betamod": PLUGIN.format(cls="B")},
        ),
    ):
        yield


@pytest.mark.usefixtures("two_claimants")
def test_two_distributions_claiming_one_scheme_is_an_error_naming_both() -> None:
    with pytest.raises(SchemeConflictError) as caught:
        Registry().resolve("dup")
    message = str(caught.value)
    assert "alpha-store 1.0" in message and "beta-store 2.0" in message
    assert "scheme_providers" in message
    assert Registry(prefer={"dup": "beta_store"}).resolve("dup").__name__ == "B"
    with pytest.raises(RegistryError, match="'gamma' does not provide 'dup'"):
        Registry(prefer={"dup": "gamma"}).resolve("dup")


@pytest.mark.usefixtures("two_claimants")
def test_manifest_scheme_providers_settle_a_conflict(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "d.py").write_text("x = 1\n")
    data = {"dag_repositories": {"r": {"url": f"dup://{remote}"}}}
    with pytest.raises(ManifestError, match=r"dag_repositories\.r\.url: .*claimed by"):
        Workspace(parse_manifest(data), cache_root=tmp_path / "c").validate()
    data["scheme_providers"] = {"dup": "alpha-store"}
    ws = Workspace(parse_manifest(data), cache_root=tmp_path / "c")
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "d.py").read_text() == "x = 1\n"


def test_compound_scheme_falls_back_to_its_outer_scheme(tmp_path: Path) -> None:
    with installed(
        tmp_path / "site",
        "outer-plugin",
        "0.1",
        {GROUP: {"outer": "outermod:O"}},
        {"outermod": PLUGIN.format(cls="O")},
    ):
        assert Registry().resolve("outer+s3").__name__ == "O"


def test_unknown_scheme_names_the_known_ones_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    monkeypatch.setattr(registry, "_providers", {})  # as if only dagfetch's core were installed
    with pytest.raises(UnknownSchemeError) as caught:
        registry.resolve("git+https")
    assert "pip install 'dagfetch[git]'" in str(caught.value)
    with pytest.raises(UnknownSchemeError, match="no fetcher for URL scheme 'nosuch'"):
        Registry().resolve("nosuch")


def test_missing_backend_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # the import of s3fs fails the way it does when the extra is not installed
    monkeypatch.setitem(sys.modules, "s3fs", None)
    # forget the s3 class fsspec caches once another test has used S3 (its public `registry`
    # is a read-only view of this dict)
    cached = sys.modules["fsspec.registry"]._registry
    monkeypatch.delitem(cached, "s3", raising=False)
    with pytest.raises(BackendNotInstalled) as caught:
        FsspecFetcher(Source("r", "s3://bucket/dags"))
    assert "pip install 'dagfetch[s3]'" in str(caught.value)
    assert isinstance(caught.value.__cause__, ImportError)


def test_any_installed_fsspec_protocol_works_without_an_entry_point(tmp_path: Path) -> None:
    # 'simplecache' is an fsspec protocol dagfetch declares no entry point for
    assert Registry().resolve("simplecache") is FsspecFetcher


def test_register_in_process_refuses_to_clobber() -> None:
    registry = Registry()
    registry.register("mine", FsspecFetcher)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("mine", FsspecFetcher)
    registry.register("mine", FsspecFetcher, clobber=True)
    with pytest.raises(RegistryError, match="not a valid URL scheme"):
        registry.register("Bad Scheme!", FsspecFetcher)
