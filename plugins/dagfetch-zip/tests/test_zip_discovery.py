"""The core finds the plugin through its entry point alone, and syncs through it."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import dagfetch_zip
import pytest
from click.testing import CliRunner
from dagfetch_zip import ZipFetcher
from zip_helpers import write_atomic, zip_bytes

from dagfetch.cli import main
from dagfetch.registry import Registry
from dagfetch.workspace import Workspace


def test_registry_lists_zip_from_the_plugin_distribution() -> None:
    claims = Registry().providers()["zip"]
    assert len(claims) == 1
    (provider,) = claims
    assert provider.distribution == "dagfetch-zip"
    assert provider.version == version("dagfetch-zip") == dagfetch_zip.__version__
    assert provider.value == "dagfetch_zip:ZipFetcher"


@pytest.mark.parametrize("scheme", ["zip+file", "zip+s3", "zip+memory", "zip+https", "zip"])
def test_compound_schemes_reach_the_plugin(scheme: str) -> None:
    assert Registry().resolve(scheme) is ZipFetcher


def test_cli_plugins_names_the_distribution_and_version() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.output) if r["scheme"] == "zip"]
    assert rows == [{"scheme": "zip", "value": "dagfetch_zip:ZipFetcher",
                     "distribution": "dagfetch-zip", "version": dagfetch_zip.__version__,
                     "conflict": False, "usable": True, "missing": [], "install": None}]


def test_workspace_syncs_a_zip_manifest_entry(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    write_atomic(archive, zip_bytes({"dags/hello.py": b"# hello\n", "lib/util.py": b"X = 1\n"}))
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.bundle]\nurl = "zip+file://{archive}"\n')
    ws = Workspace.from_manifest(manifest, cache_root=tmp_path / "cache")  # default registry
    result = ws.sync_one("bundle")
    assert result.changed and result.downloaded == 2
    root = ws.path("bundle")
    assert (root / "dags/hello.py").read_bytes() == b"# hello\n"
    assert (root / "lib/util.py").read_bytes() == b"X = 1\n"
    assert ws.current("bundle").source_url == f"zip+file://{archive}"  # type: ignore[union-attr]
