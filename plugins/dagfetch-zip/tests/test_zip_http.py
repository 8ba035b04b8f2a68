"""Against a real HTTP server with Range support: listing reads the archive's tail, fetching
reads the wanted members, conn_id credentials reach the server and never the cache."""

from __future__ import annotations

import io
import json
import random
import uuid
import zipfile
from pathlib import Path

import pytest
from dagfetch_zip import ArchiveLimitError, ZipFetcher
from zip_helpers import RangeServer, workspace, write_atomic, zip_bytes

from dagfetch.errors import RemoteNotFoundError
from dagfetch.protocol import Source

MiB = 1024 * 1024
# incompressible test data (not crypto), so the archive is ~4 MiB
BLOB = random.Random(0).randbytes(4 * MiB)  # noqa: S311
SMALL = {"dag_a.py": b"# a\n", "lib/__init__.py": b"", "lib/utils.py": b"X = 1\n"}


def publish(server: RangeServer, data: bytes) -> tuple[str, str]:
    name = f"/{uuid.uuid4().hex}.zip"
    write_atomic(server.root / name.lstrip("/"), data)
    return name, f"zip+{server.url}{name}"


def test_listing_reads_the_tail_not_the_archive(http_server: RangeServer) -> None:
    data = zip_bytes({**SMALL, "data/blob.bin": BLOB})
    name, url = publish(http_server, data)
    fetcher = ZipFetcher(Source("z", url))
    try:
        listing = fetcher.list()
    finally:
        fetcher.close()
    assert {f.path for f in listing.files} == {*SMALL, "data/blob.bin"}
    assert http_server.requests(name) == ["HEAD", "GET"]
    assert http_server.sent(name) <= 70_000 < len(data) // 50


def test_sync_reads_only_the_wanted_members(http_server: RangeServer, tmp_path: Path) -> None:
    data = zip_bytes({**SMALL, "data/blob.bin": BLOB})
    name, url = publish(http_server, data)
    ws = workspace(tmp_path, url, exclude=["data/*"])
    first = ws.sync_one("z")
    assert first.downloaded == 3
    assert FetcherFiles.of(ws.path("z")) == SMALL
    # one HEAD, the tail, then the members: a fraction of the 4 MiB archive
    assert http_server.sent(name) < len(data) // 8

    # rebuild the archive with one helper changed: one member extracted, the rest linked
    write_atomic(http_server.root / name.lstrip("/"),
                 zip_bytes({**SMALL, "lib/utils.py": b"X = 2\n", "data/blob.bin": BLOB}))
    second = ws.sync_one("z")
    assert second.changed and second.downloaded == 1 and second.reused == 2
    assert (ws.path("z") / "lib/utils.py").read_bytes() == b"X = 2\n"


def test_huge_entry_count_is_refused_from_the_tail(http_server: RangeServer) -> None:
    """A zip64 archive declaring 65,536 entries (over the default max_members of 20,000) is
    refused from its end records: the 5 MB central directory is never downloaded."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(65_536):
            zf.writestr(f"f{i}", b"")
    data = buf.getvalue()
    name, url = publish(http_server, data)
    fetcher = ZipFetcher(Source("z", url))
    try:
        with pytest.raises(ArchiveLimitError, match="declares 65536 members"):
            fetcher.list()
    finally:
        fetcher.close()
    assert http_server.sent(name) < 300_000 < len(data) // 10


def test_conn_id_credentials_reach_the_server_and_never_the_cache(
    http_server: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"zip-s3cr3t-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DAGFETCH_CONN_ZIP_HTTP",
                       json.dumps({"login": "zipuser", "password": secret}))
    _, url = publish(http_server, zip_bytes(SMALL))
    ws = workspace(tmp_path, url, conn_id="zip_http")
    http_server.auth.clear()
    ws.sync_one("z")
    assert http_server.auth and all(a.startswith("Basic ") for a in http_server.auth)

    missing = workspace(tmp_path / "other", f"zip+{http_server.url}/missing.zip",
                        conn_id="zip_http")
    with pytest.raises(RemoteNotFoundError) as caught:
        missing.sync_one("z")
    assert "missing.zip" in str(caught.value) and secret not in str(caught.value)
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path


def test_store_without_ranged_reads_downloads_the_archive_once(
    http_server: RangeServer, tmp_path: Path
) -> None:
    (http_server.root / "noranges").mkdir(exist_ok=True)
    data = zip_bytes({**SMALL, "data/blob.bin": BLOB})
    name = f"/noranges/{uuid.uuid4().hex}.zip"
    write_atomic(http_server.root / name.lstrip("/"), data)
    ws = workspace(tmp_path, f"zip+{http_server.url}{name}")
    assert ws.sync_one("z").downloaded == 4
    assert (ws.path("z") / "data/blob.bin").read_bytes() == BLOB
    # fsspec's info() probes with HEAD, then GET for a size (headers only); then one download,
    # shared by the listing and the fetch
    assert http_server.requests(name) == ["HEAD", "GET", "GET"]

    capped = workspace(tmp_path / "capped", f"zip+{http_server.url}{name}",
                       options={"max_total_size": MiB})
    with pytest.raises(ArchiveLimitError, match="serves no ranged reads"):
        capped.sync_one("z")


class FetcherFiles:
    @staticmethod
    def of(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*") if p.is_file()}
