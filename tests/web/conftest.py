"""The web server's fixtures: a synced and extracted workspace of two repositories, whose
content is hostile where a repository can make it so (task ids, DAG ids, file names and
contents that are markup), an app over it, and a test client.

``etl`` has two versions (``site.old`` and ``site.new``): the second adds a task, removes a
file, adds a binary file and changes a DAG file, so every diff has something to show. Its
hook secret is ``HOOK_SECRET``; the server's bearer tokens, when an app wants them, are
``TOKEN`` and ``OTHER_TOKEN`` (connection ``web_auth``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dagfetch.graphs import GraphStore
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.manifest import parse_manifest
from dagfetch.testing import LocalRemote
from dagfetch.web import create_app
from dagfetch.web.syncing import SyncRunner
from dagfetch.workspace import Workspace
from tests.graphs.dagfiles import DAGSHAPE, chain_dag

HOOK_SECRET = "hook-secret-3f9a1c77"
TOKEN = "web-token-b2d48e11"
OTHER_TOKEN = "web-token-rotated-90aa"
#: A secret that only a DAG file's error message carries: it must be masked everywhere.
LEAKED = "db-password-7e51aa09"

SCRIPT = "<script>alert(1)</script>"
HOSTILE_DAG = '"><img src=x onerror=alert(2)>'
HOSTILE_FILE = '"><img src=x onerror=alert(3)>.py'


def first_files() -> dict[str, bytes]:
    return {
        "lib/__init__.py": b"",
        "lib/dagshape.py": DAGSHAPE,
        "etl.py": chain_dag("etl", ["extract", SCRIPT, "load"]),
        "reports/weekly.py": chain_dag("weekly", ["collect", "email"]),
        HOSTILE_FILE: chain_dag(HOSTILE_DAG, ["a", "b"]),  # ids are written as literals
        "notes.md": f"# notes\n\n{SCRIPT}\n".encode(),
        "broken.py": f"raise RuntimeError('cannot connect with password {LEAKED}')\n".encode(),
    }


@attrs.define
class Site:
    root: Path
    remote: LocalRemote
    workspace: Workspace
    store: GraphStore
    pipeline: GraphPipeline
    old: str
    new: str
    manifest_path: Path
    connections_path: Path

    def app(self, **kwargs: Any) -> FastAPI:
        return create_app(self.workspace, self.store, **kwargs)

    def runner(self) -> CountingRunner:
        return CountingRunner(self.pipeline)


class CountingRunner(SyncRunner):
    """A real runner (sync, then extract) that also keeps the repositories it synced."""

    def __init__(self, pipeline: GraphPipeline) -> None:
        super().__init__(pipeline)
        self.synced: list[str] = []

    def run(self, repo_ids: Any) -> Any:
        self.synced += list(repo_ids)
        return super().run(repo_ids)


def make_site(root: Path, web: dict[str, Any] | None = None, *,
              hook: bool = True, store: GraphStore | None = None) -> Site:
    remote = LocalRemote(root / "remote-etl")
    for path, data in first_files().items():
        remote.write(path, data)
    other = LocalRemote(root / "remote-docs")
    other.write("README.md", b"docs\n")
    connections = root / "connections.json"
    connections.write_text(json.dumps({
        "etl_hook": {"password": HOOK_SECRET},
        "web_auth": {"password": TOKEN, "extra": {"tokens": [OTHER_TOKEN]}},
        "leaky": {"password": LEAKED},
    }))
    etl: dict[str, Any] = {"url": remote.url, "keep_versions": 5}
    if hook:
        etl["web"] = {"hook_conn_id": "etl_hook"}
    data: dict[str, Any] = {
        "connections_file": str(connections),
        "dag_repositories": {"etl": etl, "docs": {"url": other.url, "conn_id": "leaky"}},
    }
    if web is not None:
        data["web"] = web
    manifest_path = root / "dagfetch.toml"
    manifest_path.write_text(_toml(data))
    home = root / "home"
    workspace = Workspace(parse_manifest(data, base_dir=root), cache_root=home)
    store = store if store is not None else GraphStore.for_cache(home)
    pipeline = GraphPipeline(workspace, store)
    [first, _] = pipeline.sync()
    assert first.ok, first.error
    remote.write("etl.py", chain_dag("etl", ["extract", SCRIPT, "load", "notify"]))
    remote.delete("reports/weekly.py")
    remote.write("data.bin", b"\x00\x01binary\x00")
    [second, _] = pipeline.sync()
    assert second.ok, second.error
    assert first.sync is not None and second.sync is not None
    old, new = first.sync.version_id, second.sync.version_id
    assert old and new and old != new
    pipeline.pin_run("manual__1", "etl", number=1)
    pipeline.pin_run("manual__2", "etl")
    return Site(root, remote, workspace, store, pipeline, old, new, manifest_path, connections)


def _toml(data: dict[str, Any]) -> str:
    """The manifest as TOML (what ``dagfetch serve`` reads in a subprocess)."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        simple = {k: v for k, v in values.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        if name:
            lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in simple.items())
        for key, value in nested.items():
            table(f"{name}.{key}" if name else key, value)

    table("", data)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One site for the tests that only read (building one syncs and extracts twice)."""
    built = make_site(tmp_path_factory.mktemp("site"))
    yield built
    built.store.close()


@pytest.fixture
def own_site(tmp_path: Path) -> Iterator[Site]:
    """A site of the test's own, for tests that change the remote, the cache or the store."""
    built = make_site(tmp_path)
    yield built
    built.store.close()


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(site.app()) as test_client:
        yield test_client
