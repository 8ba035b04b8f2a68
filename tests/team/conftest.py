"""A team cache on moto_server and origins to sync from: an S3 bucket without versioning (a
plain bucket keeps no history) and a git daemon. Requests are counted from moto's log."""

from __future__ import annotations

import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.s3 import MotoServer

TEAM_BUCKET = "team-cache"
ORIGIN_BUCKET = "origin-plain"


@pytest.fixture(scope="module")
def team_server(moto_server: MotoServer) -> MotoServer:
    client = moto_server.client()
    for bucket in (TEAM_BUCKET, ORIGIN_BUCKET):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
    return moto_server


@pytest.fixture
def moto(team_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    monkeypatch.setenv("DAGFETCH_CONN_MOTO", team_server.connection())
    return team_server


class Origin:
    """A plain S3 prefix that the leader syncs from."""

    def __init__(self, server: MotoServer) -> None:
        self.client = server.client()
        self.prefix = f"origin-{uuid.uuid4().hex[:12]}"
        self.url = f"s3://{ORIGIN_BUCKET}/{self.prefix}"

    def write_many(self, files: dict[str, bytes]) -> None:
        def put(item: tuple[str, bytes]) -> None:
            self.client.put_object(Bucket=ORIGIN_BUCKET, Key=f"{self.prefix}/{item[0]}",
                                   Body=item[1])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, files.items()))


class Team:
    """One team cache prefix, and workspaces (leader, followers) sharing one manifest."""

    def __init__(self, server: MotoServer, root: Path, origin_url: str,
                 origin_entry: dict[str, Any] | None = None, **repo_fields: Any) -> None:
        self.server = server
        self.root = root
        self.prefix = f"team-{uuid.uuid4().hex[:12]}"
        self.url = f"s3://{TEAM_BUCKET}/{self.prefix}"
        entry = {"url": origin_url, **(origin_entry or {}), **repo_fields}
        self.data = {"dag_repositories": {"r": entry},
                     "team_cache": {"url": self.url, "conn_id": "moto"}}

    def workspace(self, name: str, **kwargs: Any) -> Workspace:
        return Workspace(parse_manifest(self.data, base_dir=self.root),
                         cache_root=self.root / name, **kwargs)

    def requests(self, mark: int) -> list[tuple[str, str, int]]:
        """Requests to the team cache since ``mark``."""
        return [r for r in self.server.settled_requests_since(mark)
                if r[1].startswith(f"/{TEAM_BUCKET}") and self.prefix in r[1]]

    def object_keys(self, folder: str = "") -> list[str]:
        client = self.server.client()
        found = client.list_objects_v2(Bucket=TEAM_BUCKET, Prefix=f"{self.prefix}/{folder}")
        return sorted(o["Key"][len(self.prefix) + 1:] for o in found.get("Contents", []))


@pytest.fixture
def origin(moto: MotoServer) -> Origin:
    return Origin(moto)


@pytest.fixture
def team(moto: MotoServer, origin: Origin, tmp_path: Path) -> Team:
    return Team(moto, tmp_path, origin.url, {"conn_id": "moto"})


def origin_requests(server: MotoServer, origin: Origin, mark: int) -> list[tuple[str, str, int]]:
    return [r for r in server.settled_requests_since(mark)
            if r[1].startswith(f"/{ORIGIN_BUCKET}") and origin.prefix in r[1]]
