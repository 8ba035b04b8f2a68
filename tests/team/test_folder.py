"""A team cache on a shared folder (file://): the same documents, the pointer replaced by a
rename, and no temporary file left behind."""

from __future__ import annotations

from pathlib import Path

from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.team.test_follow import files, tree


def _workspace(tmp_path: Path, name: str) -> Workspace:
    data = {"dag_repositories": {"r": {"url": "origin"}}, "team_cache": {"url": "shared"}}
    return Workspace(parse_manifest(data, base_dir=tmp_path), cache_root=tmp_path / name)


def test_a_folder_team_cache_serves_followers(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    for path, data in files(25).items():
        (origin / path).parent.mkdir(parents=True, exist_ok=True)
        (origin / path).write_bytes(data)
    leader = _workspace(tmp_path, "leader")
    [first] = leader.sync()
    leader.publish("r")
    (origin / "dags/d0003.py").write_bytes(b"# changed\n")
    [second] = leader.sync()
    leader.publish("r")
    follower = _workspace(tmp_path, "follower")
    followed = follower.follow("r")
    assert followed.version.version_id == second.version_id
    assert tree(Path(followed.version.path)) == {**files(25), "dags/d0003.py": b"# changed\n"}
    assert first.version_id is not None
    assert tree(follower.path("r", first.version_id)) == files(25)
    shared = tmp_path / "shared" / "r"
    assert (shared / "pointer.json").is_file()
    assert not [p for p in shared.rglob(".tmp-*")]
    assert not (origin / ".dagfetch").exists()
