"""What a command imports is its start-up time: ``dagfetch --version`` loads click and
dagfetch's command plumbing only, and a no-change ``dagfetch sync`` loads the backend of
the schemes it syncs and nothing of the graph store, the other backends, the diffs or the
DAG importer. (Speed itself is measured by the benchmarks, never by tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.git import GitDaemon, git

# the graph store, locks and retries of libraries, every backend's stack, metadata readers
NEVER_FOR_VERSION = (
    "sqlalchemy", "alembic", "filelock", "tenacity", "fsspec", "dulwich", "s3fs", "botocore",
    "aiohttp", "attr", "attrs", "packaging", "importlib_metadata", "platformdirs", "tqdm",
    "dagfetch.workspace", "dagfetch.cache", "dagfetch.backends", "dagfetch.graphs",
)
NEVER_FOR_SYNC = (
    "sqlalchemy", "alembic", "filelock", "s3fs", "botocore", "aiobotocore", "aiohttp",
    "gcsfs", "adlfs", "platformdirs", "dagfetch.graphs", "dagfetch.diffs",
    "dagfetch.importing", "dagfetch.web",
    # entry points are read without these; the team cache, gc, audit, retries, HTTP index
    # pages, progress bars (no terminal here) and completion are imported when used
    "importlib_metadata", "packaging", "tenacity", "tqdm", "html.parser", "tomllib",
    "dagfetch.team", "dagfetch.cache.gc", "dagfetch.cache.audit", "dagfetch.cli.progress",
    "dagfetch.cli.graph_store", "click.shell_completion",
    # dulwich's modules whose only use is naming their error classes
    "dulwich.lfs", "dulwich.patch", "dulwich.filters",
)
# and for git, what only another backend, a new version or ssh needs: the storage families
# (fsspec's stores), publishing and version trees (a sync that finds nothing new builds
# none), shlex (ssh command lines)
NEVER_FOR_GIT_SYNC = (
    "fsspec", "tenacity", "dagfetch.backends.fsspec", "dagfetch.storage",
    "dagfetch.cache.publish", "dagfetch.cache.trees", "shlex",
)

PROBE = """
import json, sys
from dagfetch.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, check=True)
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules)


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_version_loads_only_click_and_the_command_plumbing() -> None:
    modules = imported_by("--version")
    assert "click" in modules and "dagfetch.cli" in modules  # the probe saw the imports
    assert loaded(modules, NEVER_FOR_VERSION) == []


def manifest(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "dagfetch.json"
    path.write_text(json.dumps({"dag_repositories": {"r": {"url": url}}}))
    return path


@pytest.mark.parametrize("kind", ["file", "git", "git-daemon"])
def test_a_no_change_sync_loads_its_own_backend_only(tmp_path: Path, kind: str) -> None:
    source = tmp_path / "source"
    (source / "dags").mkdir(parents=True)
    (source / "dags" / "a.py").write_text("x = 1\n")
    daemon = None
    if kind.startswith("git"):
        served = tmp_path / "served"
        bare = served / "repo.git"
        git("init", "-q", "--bare", "-b", "main", bare)
        git("init", "-q", "-b", "main", source)
        git("add", "-A", cwd=source)
        git("commit", "-q", "-m", "one", cwd=source)
        git("push", "-q", bare, "HEAD:refs/heads/main", cwd=source)
        if kind == "git-daemon":  # git://, as the start-up benchmark syncs
            daemon = GitDaemon(served, tmp_path / "daemon.log")
            url = daemon.url("repo.git")
        else:
            url = f"git+file://{bare}"
        other = NEVER_FOR_GIT_SYNC
    else:
        url, other = source.as_uri(), ("dulwich", "dagfetch.backends.git")
    args = ("--manifest", str(manifest(tmp_path, url)), "--home", str(tmp_path / "home"),
            "sync")
    try:
        imported_by(*args)  # the first sync fetches
        modules = imported_by(*args)
    finally:
        if daemon is not None:
            daemon.stop()
    assert f"dagfetch.backends.{'git' if kind.startswith('git') else 'fsspec'}" in modules
    assert loaded(modules, NEVER_FOR_SYNC + other) == []
