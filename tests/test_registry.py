"""The registry reads real entry points: throwaway .dist-info folders on sys.path."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import dagfetch
from dagfetch import _entrypoints, defaults
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


@pytest.mark.parametrize(
    ("scheme", "extras"),
    [("s3", ("s3",)), ("gs", ("gcs",)), ("abfss", ("azure",)), ("https", ("http",)),
     ("git+ssh", ("git",)), ("ssh", ("git",)), ("file", ()), ("memory", ())],
)
def test_builtin_entry_points_declare_the_extra_they_need(
    scheme: str, extras: tuple[str, ...]
) -> None:
    (provider,) = Registry().providers()[scheme]
    assert provider.extras == extras
    assert "[" not in provider.value  # the object reference alone, as `dagfetch plugins` shows
    expected = f"pip install 'dagfetch[{extras[0]}]'" if extras else None
    assert provider.install_hint == expected


def test_the_registry_imports_no_backend() -> None:
    """The registry is a generic loader: no import of dagfetch.backends, at any level."""
    tree = ast.parse(Path(sys.modules["dagfetch.registry"].__file__ or "").read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("dagfetch.backends")]


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


def test_a_distribution_is_named_by_its_metadata_and_found_once_on_sys_path(
    tmp_path: Path,
) -> None:
    """Entry points are read from the metadata folders themselves: a dotted name
    (``zope.thing-1.0.dist-info``) keeps its dots, an egg-info folder counts too, and the
    same distribution in two folders of sys.path (editable and site) counts once, the first."""
    first, second = tmp_path / "first", tmp_path / "second"
    with (
        installed(first, "dotted.plugin", "1.0", {GROUP: {"dotted": "dottedmod:D"}},
                  {"dottedmod": PLUGIN.format(cls="D")}),
        installed(second, "dotted.plugin", "0.9", {GROUP: {"dotted": "oldmod:D"}}),
    ):
        eggs = tmp_path / "eggs"
        egg = eggs / "egg_plugin.egg-info"
        egg.mkdir(parents=True)
        (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: egg-plugin\n"
                                      "Version: 3.0\n\nName: not this one\n")
        (egg / "entry_points.txt").write_text(f"[{GROUP}]\negg = eggmod:E\n")
        sys.path.insert(0, str(eggs))
        try:
            providers = Registry().providers()
        finally:
            sys.path.remove(str(eggs))
    # `installed` put `second` first on sys.path: it is the one that counts
    assert [p.describe() for p in providers["dotted"]] == ["dotted.plugin 0.9 (oldmod:D)"]
    assert [p.describe() for p in providers["egg"]] == ["egg-plugin 3.0 (eggmod:E)"]


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


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownSchemeError, match="no fetcher for URL scheme 'nosuch'") as caught:
        Registry().resolve("nosuch")
    assert "s3" in str(caught.value) and "file" in str(caught.value)


ABSENT = "dagfetch-test-absent-package"


def test_missing_requirement_of_an_entry_points_extra_names_the_install_command(
    tmp_path: Path,
) -> None:
    """A third-party distribution gets install hints from its own metadata: the entry point
    names an extra, the extra's requirement is not installed, and the module is never
    imported."""
    with installed(
        tmp_path / "site",
        "cloud-store",
        "3.1",
        {GROUP: {"cloudy": "cloudmod:C [cloud]"}},
        {"cloudmod": PLUGIN.format(cls="C")},
        requires=[
            "attrs>=20",  # a base requirement: installed with the distribution, not checked
            f"{ABSENT}-base; python_version >= '3'",  # a base one with a marker: not checked
            f'{ABSENT}>=1.2; extra == "cloud"',
            'attrs; extra == "cloud"',  # installed: not named
            f'{ABSENT}-other; extra == "other"',  # another extra: not named
        ],
    ):
        with pytest.raises(BackendNotInstalled) as caught:
            Registry().resolve("cloudy")
        message = str(caught.value)
        assert message.startswith("cloudy:// is not usable here: cloud-store 3.1 (cloudmod:C)")
        assert f"needs {ABSENT}>=1.2, not installed; pip install 'cloud-store[cloud]'" in message
        assert "other" not in message and "-base" not in message
        assert isinstance(caught.value.__cause__, ImportError)  # PackageNotFoundError
        assert "cloudmod" not in sys.modules  # checked from metadata, before any import


def test_an_extra_requiring_another_distributions_extra_is_followed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    with (
        installed(site, "inner-dep", "1.0", {}, requires=[f'{ABSENT}; extra == "deep"']),
        installed(
            site,
            "outer-store",
            "1.0",
            {GROUP: {"outer": "outermod:O [net]"}},
            {"outermod": PLUGIN.format(cls="O")},
            requires=['inner-dep[deep]>=1; extra == "net"'],
        ),
        pytest.raises(BackendNotInstalled, match=rf"needs {ABSENT}, not installed; pip install "
                                                 r"'outer-store\[net\]'"),
    ):
        Registry().resolve("outer")


def test_import_error_while_loading_names_the_extras_or_says_reinstall(tmp_path: Path) -> None:
    broken = "import no_such_module_anywhere\n"
    site = tmp_path / "site"
    with (
        installed(site, "plain-store", "1.0", {GROUP: {"plain": "plainmod:P"}},
                  {"plainmod": broken}),
        installed(site, "extra-store", "1.0", {GROUP: {"extra": "extramod:E [fast]"}},
                  {"extramod": broken}, requires=['attrs; extra == "fast"']),
    ):
        with pytest.raises(BackendNotInstalled, match="failed to import") as plain:
            Registry().resolve("plain")
        assert str(plain.value).endswith("; reinstall plain-store")
        assert isinstance(plain.value.__cause__, ImportError)
        with pytest.raises(BackendNotInstalled) as extra:
            Registry().resolve("extra")
        assert str(extra.value).endswith("; pip install 'extra-store[fast]'")


@pytest.mark.parametrize(("url", "package", "extra"), [
    ("s3://bucket/dags", "s3fs", "s3"),
    ("git+file:///srv/git/dags.git", "dulwich", "git"),
])
def test_dagfetchs_own_backend_without_its_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, url: str, package: str, extra: str
) -> None:
    """As if s3fs (dulwich) were not installed: the hint comes from the `[s3]` (`[git]`) of
    dagfetch's own entry point and the requirements of that extra, not from a table in the
    core, and it says what to pip install, never "reinstall dagfetch"."""
    real = _entrypoints._distribution

    def lookup(name: str) -> object:
        if name == package:
            raise _entrypoints.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(_entrypoints, "_distribution", lookup)
    with pytest.raises(BackendNotInstalled) as caught:
        Registry().resolve(url.split("://")[0])
    assert f"needs {package}>=" in str(caught.value)
    assert str(caught.value).endswith(f"pip install 'dagfetch[{extra}]'")
    assert "reinstall" not in str(caught.value)
    manifest = parse_manifest({"dag_repositories": {"r": {"url": url}}})
    with pytest.raises(ManifestError, match=rf"dag_repositories\.r\.url: .*dagfetch\[{extra}\]"):
        Workspace(manifest).validate()


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


def test_a_bare_registry_serves_entry_points_only() -> None:
    # 'simplecache' is an fsspec protocol dagfetch declares no entry point for
    with pytest.raises(UnknownSchemeError):
        Registry().resolve("simplecache")


def test_the_fallback_is_handed_in() -> None:
    asked: list[str] = []

    def fallback(scheme: str) -> type[FsspecFetcher] | None:
        asked.append(scheme)
        return FsspecFetcher if scheme == "mine" else None

    registry = Registry(fallback=fallback)
    assert registry.resolve("mine") is FsspecFetcher
    assert registry.resolve("mine") is FsspecFetcher  # remembered
    with pytest.raises(UnknownSchemeError):
        registry.resolve("theirs")
    assert asked == ["mine", "theirs"]
    assert registry.resolve("file") is FsspecFetcher  # entry points come first
    assert asked == ["mine", "theirs"]


def test_the_composition_root_hands_in_the_fsspec_fallback(tmp_path: Path) -> None:
    # any installed fsspec protocol works without an entry point ...
    assert defaults.registry_for().resolve("simplecache") is FsspecFetcher
    assert dagfetch.default_registry() is defaults.default_registry()
    assert dagfetch.default_registry().resolve("simplecache") is FsspecFetcher
    manifest = parse_manifest({"dag_repositories": {"r": {"url": str(tmp_path)}}})
    assert Workspace(manifest, cache_root=tmp_path / "c").registry.resolve("simplecache") is (
        FsspecFetcher
    )
    # ... except fsspec's views of other data, which are never used as stores
    for scheme in ("zip", "tar", "libarchive", "git", "reference", "zip+s3", "nosuch"):
        assert defaults.fsspec_fallback(scheme) is None, scheme
    with pytest.raises(UnknownSchemeError):
        defaults.registry_for().resolve("tar")


def test_register_in_process_refuses_to_clobber() -> None:
    registry = Registry()
    registry.register("mine", FsspecFetcher)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register("mine", FsspecFetcher)
    registry.register("mine", FsspecFetcher, clobber=True)
    with pytest.raises(RegistryError, match="not a valid URL scheme"):
        registry.register("Bad Scheme!", FsspecFetcher)
