"""Small helpers shared by the git backend's test modules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from dulwich.repo import Repo

from dagfetch.manifest import url_scheme
from dagfetch.testing import one_repository
from dagfetch.testing.conformance import counting_registry
from dagfetch.workspace import Workspace
from tests.servers.git import GitRemote

REPO = "dags"


def make_ws(remote: GitRemote, tmp_path: Path, cache: str = "cache",
            downloads: list[str] | None = None, **fields: Any) -> Workspace:
    """A workspace with one repository ``dags`` served by ``remote``; ``downloads`` (when
    given) collects the path of every file the fetcher is asked to download."""
    registry = None
    if downloads is not None:
        registry = counting_registry(url_scheme(remote.url), downloads, {"after": None})
    return one_repository(remote, tmp_path, repo_id=REPO, cache=cache, registry=registry,
                          **fields)


def tree_files(path: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, names in os.walk(path):
        for name in names:
            full = Path(dirpath) / name
            if not full.is_symlink():
                out[full.relative_to(path).as_posix()] = full.read_bytes()
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (inode, size, mtime_ns) of every file under ``root``, lock files and the
    state record aside (they are touched by every check by design)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if name.endswith(".lock") or name == "state.json":
                out[rel] = (0, 0, 0)
            else:
                out[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def store_path(ws: Workspace) -> Path:
    return ws.cache.layout.work_dir(REPO) / "git"


def pack_objects(ws: Workspace) -> int:
    """How many distinct objects the repository's local git store holds in packs (a thin
    pack is completed with copies of its delta bases, so packs overlap)."""
    repo = Repo(str(store_path(ws)), bare=True)
    try:
        return len({sha for p in repo.object_store.packs for sha in p})
    finally:
        repo.close()


def drop_store(ws: Workspace) -> None:
    shutil.rmtree(ws.cache.layout.work_dir(REPO))
