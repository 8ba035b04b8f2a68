"""`dagfetch sync --publish` / `--follow` through the team cache, and the database's published
version winning over the pointer where a database is named."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dagfetch.cli import main
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.graphs.store import GraphStore
from tests.servers.git import GitRemote, GitServers
from tests.servers.s3 import MotoServer
from tests.team.conftest import Origin, Team, origin_requests
from tests.team.test_follow import files, publish, tree


def _manifest(team: Team, path: Path) -> Path:
    entry = team.data["dag_repositories"]["r"]
    path.write_text(
        f'team_cache = {{url = "{team.url}", conn_id = "moto"}}\n'
        f'[dag_repositories.r]\nurl = "{entry["url"]}"\nconn_id = "moto"\n')
    return path


def test_sync_publish_then_follow_on_another_node(team: Team, origin: Origin,
                                                  tmp_path: Path) -> None:
    origin.write_many(files(12))
    manifest = _manifest(team, tmp_path / "dagfetch.toml")
    runner = CliRunner()
    leader = runner.invoke(main, ["--manifest", str(manifest), "--home", str(tmp_path / "lead"),
                                  "sync", "--extract", "--publish", "--json"])
    assert leader.exit_code == 0, leader.output
    [led] = json.loads(leader.output)
    assert led["published"]
    mark = team.server.mark()
    follower = runner.invoke(main, ["--manifest", str(manifest), "--home",
                                    str(tmp_path / "follow"), "sync", "--follow", "--json"])
    assert follower.exit_code == 0, follower.output
    [followed] = json.loads(follower.output)
    assert followed["version_id"] == led["version_id"] and followed["followed"]
    assert origin_requests(team.server, origin, mark) == []
    assert len(team.requests(mark)) <= 3
    status = runner.invoke(main, ["--manifest", str(manifest), "--home",
                                  str(tmp_path / "follow"), "status", "--json"])
    [row] = json.loads(status.output)
    assert row["current"] == led["version_id"] and row["team_published_at"]


def test_a_named_database_decides_which_version_followers_serve(
        team: Team, origin: Origin, tmp_path: Path) -> None:
    first = publish(team, origin, files(6))
    publish(team, origin, {"dags/d0002.py": b"# second\n"})  # the pointer is here now
    store = GraphStore(f"sqlite:///{tmp_path / 'graphs.db'}")
    store.publish("r", first)  # but the database says the first
    pipeline = GraphPipeline(team.workspace("follower"), store)
    assert pipeline.database_named
    [outcome] = pipeline.follow()
    assert outcome.ok and outcome.version_id == first
    assert tree(team.workspace("follower").cache.path("r")) == files(6)


def test_path_falls_back_to_the_origin_only_when_told(
        moto: MotoServer, git_servers: GitServers, tmp_path: Path) -> None:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)
    for path, data in files(4).items():
        remote.write(path, data)
    commit = remote.push()
    team = Team(moto, tmp_path, remote.url)
    [synced] = team.workspace("leader").sync()  # never published
    assert synced.version_id == commit
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'team_cache = {{url = "{team.url}", conn_id = "moto"}}\n'
                        f'[dag_repositories.r]\nurl = "{remote.url}"\n')
    args = ["--manifest", str(manifest), "--home", str(tmp_path / "pod"), "path", "r",
            commit, "--json"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and "not in the team cache" in refused.output
    allowed = CliRunner().invoke(main, [*args, "--origin-fallback"])
    assert allowed.exit_code == 0, allowed.output
    assert tree(Path(json.loads(allowed.output)["path"])) == files(4)
