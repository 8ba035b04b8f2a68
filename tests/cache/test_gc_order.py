"""gc keeps the newest ``keep_versions`` by when they became current, not by fetch time."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagfetch.workspace import Workspace


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_refetching_an_old_commit_does_not_make_a_newer_one_the_evicted_one(
    tmp_path: Path,
) -> None:
    bare, work = tmp_path / "repo.git", tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    git("config", "user.email", "t@example.com", cwd=work)
    git("config", "user.name", "t", cwd=work)
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(
        f'[dag_repositories.r]\nurl = "git+file://{bare}"\nref = "main"\nkeep_versions = 2\n'
    )
    ws = Workspace.from_manifest(manifest, cache_root=tmp_path / "cache")
    commits = []
    for n in range(3):
        (work / "dag.py").write_text(f"n = {n}\n")
        git("add", "-A", cwd=work)
        git("commit", "-qm", f"c{n}", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        commits.append(ws.sync_one("r").version_id)
    first, second, third = commits
    assert ws.gc().evicted == (("r", first),)
    ws.path("r", first)  # fetched again: the newest by fetch time, the oldest by publish
    report = ws.gc()
    assert report.evicted == (("r", first),)
    assert {e.version.version_id for e in ws.versions("r") if e.present} == {second, third}
