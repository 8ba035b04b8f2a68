"""Two leaders publishing at once: the pointer moves by compare-and-swap (S3's conditional
PUTs on moto_server, an OS lock on a shared folder), so a leader that read the pointer before
another one moved it never moves it back; followers get one complete version."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from dagfetch.manifest import parse_manifest
from dagfetch.team import Uploaded
from dagfetch.team.documents import pointer_key
from dagfetch.team.objects import TeamObjects
from dagfetch.team.upload import read_document
from dagfetch.workspace import Workspace
from tests.team.conftest import Origin, Team
from tests.team.test_follow import files, tree

CHANGED = {"dags/d0007.py": b"# b only\n"}


def _folder_team(tmp_path: Path) -> Any:
    """A team cache on a shared folder, its origin a folder too, with the same interface."""
    origin = tmp_path / "origin"

    class Folder:
        def write_many(self, content: dict[str, bytes]) -> None:
            for path, data in content.items():
                (origin / path).parent.mkdir(parents=True, exist_ok=True)
                (origin / path).write_bytes(data)

        def workspace(self, name: str) -> Workspace:
            data = {"dag_repositories": {"r": {"url": "origin"}}, "team_cache": {"url": "shared"}}
            return Workspace(parse_manifest(data, base_dir=tmp_path), cache_root=tmp_path / name)

    folder = Folder()
    return folder, folder


@pytest.fixture(params=["s3", "folder"])
def leaders(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    """(team, origin) with the team cache on moto_server or on a folder."""
    if request.param == "folder":
        return _folder_team(tmp_path)
    return request.getfixturevalue("team"), request.getfixturevalue("origin")


def _two_leaders(team: Any, origin: Any) -> tuple[Workspace, Workspace, str, str]:
    """Leader a synced the origin's 30 files, leader b the same with one file changed."""
    origin.write_many(files(30))
    first, second = team.workspace("leader-a"), team.workspace("leader-b")
    [a] = first.sync()
    origin.write_many(CHANGED)
    [b] = second.sync()
    assert a.version_id is not None and b.version_id is not None
    assert a.version_id != b.version_id
    return first, second, a.version_id, b.version_id


def test_leaders_publishing_at_once_leave_one_pointer_the_loser_reports_the_winner(
        leaders: tuple[Any, Any]) -> None:
    team, origin = leaders
    first, second, a, b = _two_leaders(team, origin)
    barrier = threading.Barrier(2)
    results: dict[str, Uploaded] = {}
    failures: list[BaseException] = []

    def upload(name: str, leader: Workspace) -> None:
        barrier.wait()
        try:
            results[name] = leader.publish("r")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=upload, args=item)
               for item in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    followed = team.workspace("follower").follow("r")
    final = followed.version.version_id
    expected = {a: files(30), b: {**files(30), **CHANGED}}
    assert tree(Path(followed.version.path)) == expected[final]
    assert any(r.moved for r in results.values())
    objects = first.team_cache.objects  # type: ignore[union-attr]
    for result in results.values():
        if result.moved and result.version_id != final:
            # no race after all: it moved first and the other leader read its pointer before
            # moving on from it (the barrier starts both, it cannot make them overlap)
            document = read_document(objects, "r", final)
            assert document is not None and document.previous == result.version_id
        else:  # a loser knows who won; the winner's is the pointer
            assert result.pointer == final


def test_a_leader_that_read_the_pointer_before_another_moved_it_never_moves_it_back(
        leaders: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    team, origin = leaders
    slow, fast, a, b = _two_leaders(team, origin)
    assert slow.publish("r").pointer == a  # slow uploads again below, from a
    origin.write_many({"dags/d0001.py": b"# slow's newer view\n"})
    [c] = slow.sync()
    assert c.version_id is not None
    slow_objects = slow.team_cache.objects  # type: ignore[union-attr]
    document_written, fast_done = threading.Event(), threading.Event()
    put = TeamObjects.put

    def put_then_wait(self: TeamObjects, key: str, data: bytes) -> None:
        put(self, key, data)
        if self is slow_objects and key.endswith(f"versions/{c.version_id}.json"):
            document_written.set()  # slow has read the pointer (a) and written its document
            assert fast_done.wait(60)

    monkeypatch.setattr(TeamObjects, "put", put_then_wait)
    outcome: dict[str, Uploaded] = {}
    racer = threading.Thread(target=lambda: outcome.setdefault("slow", slow.publish("r")))
    racer.start()
    assert document_written.wait(60)
    assert fast.publish("r").moved  # b moves the pointer from a
    fast_done.set()
    racer.join(60)
    lost = outcome["slow"]
    assert (lost.moved, lost.pointer) == (False, b)
    assert team.workspace("follower").follow("r").version.version_id == b
    # the next publish of the slow leader moves on from b, now that it has read it
    again = slow.publish("r")
    assert again.moved and again.pointer == c.version_id


def test_the_pointer_key_is_written_by_compare_and_swap_on_s3(team: Team, origin: Origin) -> None:
    origin.write_many(files(3))
    leader = team.workspace("leader")
    leader.sync()
    objects = leader.team_cache.objects  # type: ignore[union-attr]
    assert objects.compare_and_swap
    leader.publish("r")
    key = pointer_key("r")
    data, tag = objects.get_tagged(key)
    assert tag is not None
    assert not objects.put_if(key, data, None)  # it exists: create-only is refused
    assert not objects.put_if(key, data, '"0123456789abcdef0123456789abcdef"')
    assert objects.put_if(key, data, tag)
