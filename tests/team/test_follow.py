"""Leader uploads and followers fetching from a team cache on moto_server: the version asked
for, in at most three requests, and never a request to the origin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagfetch.errors import VersionUnavailableError
from tests.servers.git import GitRemote, GitServers
from tests.team.conftest import Origin, Team, origin_requests


def files(count: int, tag: str = "") -> dict[str, bytes]:
    return {f"dags/d{i:04d}.py": f"# dag {i} {tag}\n".encode() * 40 for i in range(count)}


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def publish(team: Team, origin: Origin, content: dict[str, bytes]) -> str:
    origin.write_many(content)
    leader = team.workspace("leader")
    [result] = leader.sync()
    assert result.error is None, result.error
    assert result.version_id is not None
    leader.publish("r")
    return result.version_id


def test_a_cold_follower_gets_the_published_version_in_three_requests(
        team: Team, origin: Origin) -> None:
    version_id = publish(team, origin, files(300))
    mark = team.server.mark()
    followed = team.workspace("follower").follow("r")
    seen = team.requests(mark)
    assert followed.version.version_id == version_id
    assert tree(Path(followed.version.path)) == files(300)
    assert [m for m, _, _ in seen] == ["GET", "GET", "GET"], seen
    assert origin_requests(team.server, origin, mark) == []


def test_a_warm_follower_fetches_one_changed_file_in_three_requests(
        team: Team, origin: Origin) -> None:
    publish(team, origin, files(300))
    follower = team.workspace("follower")
    follower.follow("r")
    changed = {**files(300), "dags/d0150.py": b"# changed\n"}
    new_id = publish(team, origin, {"dags/d0150.py": b"# changed\n"})
    mark = team.server.mark()
    followed = follower.follow("r")
    seen = team.requests(mark)
    assert followed.changed and followed.version.version_id == new_id
    assert tree(Path(followed.version.path)) == changed
    assert followed.fetched is not None and followed.fetched.downloaded == 1
    assert len(seen) <= 3 and all(m == "GET" for m, _, _ in seen), seen
    assert origin_requests(team.server, origin, mark) == []
    # and a follower already there asks only for the pointer
    mark = team.server.mark()
    again = follower.follow("r")
    assert not again.changed and len(team.requests(mark)) == 1


def test_followers_of_a_git_origin_never_ask_the_git_daemon(
        moto: object, git_servers: GitServers, tmp_path: Path) -> None:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)
    for path, data in files(50).items():
        remote.write(path, data)
    commit = remote.push()
    team = Team(moto, tmp_path, remote.url)  # type: ignore[arg-type]
    leader = team.workspace("leader")
    [result] = leader.sync()
    assert result.version_id == commit
    leader.publish("r")
    name = remote.url.rsplit("/", 1)[1]
    before = git_servers.daemon.requests(name)
    followers = [team.workspace(f"follower-{i}") for i in range(3)]
    for follower in followers:
        followed = follower.follow("r")
        assert followed.version.version_id == commit
        assert tree(Path(followed.version.path)) == files(50)
    assert git_servers.daemon.requests(name) == before


def test_path_of_an_old_version_comes_from_the_team_cache_though_the_bucket_keeps_no_history(
        team: Team, origin: Origin) -> None:
    old = publish(team, origin, files(20, "old"))
    publish(team, origin, files(20, "new"))
    follower = team.workspace("follower")
    mark = team.server.mark()
    path = follower.path("r", old)
    assert tree(path) == files(20, "old")
    assert origin_requests(team.server, origin, mark) == []
    assert follower.cache.current_id("r") is None  # `path` fetches, it does not follow


def test_a_version_the_team_cache_lacks_is_not_fetched_from_the_origin_unless_told(
        team: Team, origin: Origin) -> None:
    origin.write_many(files(5))
    leader = team.workspace("leader")
    [result] = leader.sync()  # synced, never published
    assert result.version_id is not None
    follower = team.workspace("follower")
    mark = team.server.mark()
    with pytest.raises(VersionUnavailableError, match="not in the team cache"):
        follower.path("r", result.version_id)
    assert origin_requests(team.server, origin, mark) == []
    with pytest.raises(VersionUnavailableError, match="nothing published"):
        follower.follow("r")


def test_the_status_says_when_the_followed_version_was_published(
        team: Team, origin: Origin) -> None:
    publish(team, origin, files(3))
    follower = team.workspace("follower")
    follower.follow("r")
    [status] = follower.status()
    pointer = follower.team_cache.published("r")  # type: ignore[union-attr]
    assert pointer is not None and status.team_published_at == pointer.published_at
    assert os.path.isdir(follower.cache.path("r"))
