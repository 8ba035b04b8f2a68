"""Hash once: the fsspec fetcher returns the sha256 of the bytes each download wrote through
its sink, and the cache then does not read those files back to hash them. Files whose bytes
a file system wrote itself (a chained URL, GCS's ``_get_file``) and files whose listing gives
a digest (checked by the cache's read-back) are left to the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dagfetch.testing import one_repository
from tests.backends.fsspec.test_s3 import PLAIN, S3Remote, buckets, conn_env  # noqa: F401
from tests.servers.s3 import MotoServer

FILES = {"a.py": b"a = 1\n", "lib/u.py": b"u = 2\n" * 100, "lib/deep/v.py": b""}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetched(ws: Any, tmp_path: Path) -> tuple[dict[str, str], Path]:
    fetcher = ws.fetcher_for(ws.manifest.get("r"))
    listing = fetcher.list()
    dest = tmp_path / "dest"
    written = fetcher.fetch(listing.files, dest)
    return dict(written or {}), dest


def test_a_local_fetch_returns_the_sha256_of_every_file_it_wrote(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for path, data in FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(data)
    written, dest = _fetched(one_repository(repo.as_uri(), tmp_path), tmp_path)
    assert written == {path: _sha(data) for path, data in FILES.items()}
    assert {p: (dest / p).read_bytes() for p in FILES} == FILES


def test_a_chained_url_leaves_hashing_to_the_cache(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_bytes(b"a = 1\n")
    ws = one_repository(f"simplecache::file://{repo}", tmp_path, options={
        "storage_options": {"cache_storage": str(tmp_path / "fsspec-cache")}})
    written, dest = _fetched(ws, tmp_path)
    assert written == {} and (dest / "a.py").read_bytes() == b"a = 1\n"
    assert ws.sync_one("r").downloaded == 1


def test_an_s3_sync_hashes_each_download_once_and_publishes_its_bytes(
    conn_env: MotoServer, tmp_path: Path, cache_read_backs: list[Path]  # noqa: F811
) -> None:
    remote = S3Remote(conn_env, PLAIN)
    remote.write_many(FILES)
    read_back = cache_read_backs
    ws = one_repository(remote, tmp_path)
    written, _ = _fetched(ws, tmp_path)
    assert written == {path: _sha(data) for path, data in FILES.items()}
    result = ws.sync_one("r")
    assert result.downloaded == 3 and read_back == []
    version = ws.cache.get("r", result.version_id)
    assert {f.path: f.sha256 for f in version.files} == written
    assert {p: (ws.path("r") / p).read_bytes() for p in FILES} == FILES
