"""What the team cache serves is checked before it is published: an altered pack or document
is refused and reported; an upload cut before its pointer leaves followers on the old
version; a follower racing a leader gets the old version or the new one, whole."""

from __future__ import annotations

import gzip
import logging
import threading
from pathlib import Path

import pytest

from dagfetch.errors import FetchError, VerificationError
from dagfetch.team.objects import TeamObjects
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY
from tests.team.conftest import TEAM_BUCKET, Origin, Team
from tests.team.test_follow import files, publish, tree


def _tamper(team: Team, key: str, change: bytes | None) -> None:
    """Overwrite the start of an object with ``change``, or (None) flip a bit of every byte;
    its length stays, so only the digests can tell."""
    client = team.server.client()
    full = f"{team.prefix}/{key}"
    data = bytearray(client.get_object(Bucket=TEAM_BUCKET, Key=full)["Body"].read())
    if change is None:
        data = bytearray(b ^ 0x01 for b in data)
    else:
        data[: len(change)] = change
    client.put_object(Bucket=TEAM_BUCKET, Key=full, Body=bytes(data))


def test_a_tampered_pack_is_refused_and_nothing_is_published(team: Team, origin: Origin) -> None:
    publish(team, origin, files(10))
    [pack] = team.object_keys("r/packs/")
    _tamper(team, pack, b"import os; os.system('evil')  #")
    follower = team.workspace("follower")
    with pytest.raises(VerificationError, match="altered content") as caught:
        follower.follow("r")
    assert "dags/d0000.py" in str(caught.value)
    assert follower.cache.current_id("r") is None
    assert not [p for p in (follower.cache.root / "r").iterdir() if p.name != ".meta"]


def test_a_tampered_changed_file_is_refused_and_the_old_version_keeps_serving(
        team: Team, origin: Origin) -> None:
    old = publish(team, origin, files(10))
    follower = team.workspace("follower")
    follower.follow("r")
    publish(team, origin, {"dags/d0005.py": b"# new\n"})
    for key in team.object_keys("r/packs/"):
        _tamper(team, key, None)  # every pack, the one the warm follower reads included
    with pytest.raises(VerificationError):
        follower.follow("r")
    assert follower.cache.current_id("r") == old
    assert tree(follower.cache.path("r")) == files(10)


def test_a_document_naming_another_version_is_refused(team: Team, origin: Origin) -> None:
    publish(team, origin, files(3))
    first = team.object_keys("r/versions/")[0]
    second = publish(team, origin, {"dags/d0001.py": b"# two\n"})
    client = team.server.client()
    body = client.get_object(Bucket=TEAM_BUCKET, Key=f"{team.prefix}/{first}")["Body"].read()
    client.put_object(Bucket=TEAM_BUCKET, Key=f"{team.prefix}/r/versions/{second}.json",
                      Body=body)
    with pytest.raises(VerificationError, match="describes"):
        team.workspace("follower").follow("r")


def test_an_upload_cut_before_its_pointer_leaves_followers_on_the_old_version(
        team: Team, origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    old = publish(team, origin, files(10))

    def put_if(self: TeamObjects, key: str, data: bytes, tag: str | None) -> bool:
        assert key.endswith("pointer.json")  # the one object written by compare-and-swap
        raise FetchError("the leader died here")

    with monkeypatch.context() as patched:
        patched.setattr(TeamObjects, "put_if", put_if)
        with pytest.raises(FetchError):
            publish(team, origin, {"dags/d0003.py": b"# half uploaded\n"})
    followed = team.workspace("follower").follow("r")
    assert followed.version.version_id == old
    assert tree(Path(followed.version.path)) == files(10)
    # the next upload of that version only moves the pointer
    leader = team.workspace("leader")
    done = leader.publish("r")
    assert done.already_there
    assert team.workspace("follower-2").follow("r").version.version_id != old


def test_a_follower_racing_the_leader_sees_a_whole_old_or_new_version(
        team: Team, origin: Origin) -> None:
    contents = {0: files(40)}
    published = [publish(team, origin, contents[0])]
    stop = threading.Event()
    seen: list[tuple[str, dict[str, bytes]]] = []
    errors: list[BaseException] = []

    def follow() -> None:
        follower = team.workspace("racer")
        while not stop.is_set():
            try:
                version = follower.follow("r").version
                seen.append((version.version_id, tree(Path(version.path))))
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    racer = threading.Thread(target=follow)
    racer.start()
    try:
        for n in range(1, 5):
            change = {f"dags/d{n:04d}.py": f"# round {n}\n".encode()}
            contents[n] = {**contents[n - 1], **change}
            published.append(publish(team, origin, change))
    finally:
        stop.set()
        racer.join(60)
    assert not errors, errors
    by_id = {vid: contents[n] for n, vid in enumerate(published)}
    assert seen
    for version_id, got in seen:
        assert version_id in by_id
        assert got == by_id[version_id]


def test_no_secret_reaches_the_team_cache_or_the_logs(
        team: Team, origin: Origin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dagfetch")
    caplog.set_level(logging.INFO)
    publish(team, origin, files(5))
    team.workspace("follower").follow("r")
    client = team.server.client()
    for key in team.object_keys():
        body = client.get_object(Bucket=TEAM_BUCKET, Key=f"{team.prefix}/{key}")["Body"].read()
        if body.startswith(b"\x1f\x8b"):
            body = gzip.decompress(body)
        for secret in (SECRET_KEY, ACCESS_KEY):
            assert secret.encode() not in body, key
    assert "team cache" in caplog.text  # the upload and the fetch were logged
    assert SECRET_KEY not in caplog.text
