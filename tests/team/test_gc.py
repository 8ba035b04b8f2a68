"""gc of the team cache by the local cache's rules: the pointer's version, pinned versions and
the newest keep_versions stay, with every pack they need; the rest goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.errors import VersionUnavailableError
from dagfetch.graphs import Graph, GraphStore, SourceRef, Task
from dagfetch.graphs.pipeline import GraphPipeline
from tests.team.conftest import Origin, Team
from tests.team.test_follow import files, publish, tree


def test_gc_keeps_pinned_and_newest_versions_and_their_packs(
        team: Team, origin: Origin) -> None:
    team.data["dag_repositories"]["r"]["keep_versions"] = 2
    base = files(20)
    states = [base]
    ids = [publish(team, origin, base)]
    for n in range(1, 6):
        change = {"dags/d0001.py": f"# v{n}\n".encode()}  # each round replaces the last
        states.append({**states[-1], **change})
        ids.append(publish(team, origin, change))
    leader = team.workspace("leader")
    keys_before = team.object_keys()
    [dry] = leader.team_gc({"r": {ids[1]}}, dry_run=True)
    assert set(dry.removed_versions) == {ids[0], ids[2], ids[3]}
    assert team.object_keys() == keys_before
    [report] = leader.team_gc({"r": {ids[1]}})
    assert set(report.kept) == {ids[1], ids[4], ids[5]}
    assert set(report.removed_versions) == {ids[0], ids[2], ids[3]}
    assert report.removed_packs == 0  # packs younger than the grace may be an upload's
    team_cache = leader.team_cache
    assert team_cache is not None
    report = team_cache.gc("r", keep_versions=2, pinned={ids[1]}, grace_seconds=0)
    assert report.removed_packs == 2  # the deltas of the removed versions 2 and 3
    for n in (1, 4, 5):  # every kept version is still whole, from a cold cache
        follower = team.workspace(f"cold-{n}")
        assert tree(follower.path("r", ids[n])) == states[n]
    for n in (0, 2, 3):
        with pytest.raises(VersionUnavailableError):
            team.workspace(f"gone-{n}").path("r", ids[n])
    assert team.workspace("latest").follow("r").version.version_id == ids[5]


def test_gc_never_removes_the_pointers_version(team: Team, origin: Origin) -> None:
    team.data["dag_repositories"]["r"]["keep_versions"] = 1
    first = publish(team, origin, files(5))
    leader = team.workspace("leader")
    second = publish(team, origin, {"dags/d0000.py": b"# 2\n"})
    # the leader moves back to the first version (a revert): it is re-pointed, not re-uploaded
    assert leader.publish("r", first).already_there
    [report] = leader.team_gc()
    assert first in report.kept
    assert second in report.kept  # the newest upload, kept by keep_versions=1
    assert team.workspace("f").follow("r").version.version_id == first


def test_the_pipelines_gc_keeps_versions_runs_are_pinned_to_in_the_database(
        team: Team, origin: Origin, tmp_path: Path) -> None:
    team.data["dag_repositories"]["r"]["keep_versions"] = 1
    ids = [publish(team, origin, {"dags/d0000.py": f"# v{n}\n".encode()}) for n in range(3)]
    store = GraphStore(f"sqlite:///{tmp_path / 'graphs.db'}")
    graph = Graph.of("a", [Task("t1", "BashOperator"), Task("t2", "BashOperator")],
                     [("t1", "t2")])
    store.record_extraction("r", ids[0], [("dags/d0000.py", graph)], {}, file_count=1,
                            file_hashes={"dags/d0000.py": "0" * 64})
    store.pin_run("run-1", "a", source=SourceRef("r", ids[0], "dags/d0000.py"))
    pipeline = GraphPipeline(team.workspace("leader"), store)
    assert pipeline.pinned_sources() == {"r": {ids[0]}}
    pipeline.gc()
    assert {k.rsplit("/", 1)[1][:-5] for k in team.object_keys("r/versions/")} == {ids[0], ids[2]}
    assert tree(team.workspace("pod").path("r", ids[0]))["dags/d0000.py"] == b"# v0\n"
    store.release_run("run-1", "a")
    pipeline.gc()
    assert {k.rsplit("/", 1)[1][:-5] for k in team.object_keys("r/versions/")} == {ids[2]}
