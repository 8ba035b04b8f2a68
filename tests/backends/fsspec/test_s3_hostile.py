"""S3 buckets as real upload tools and attackers leave them, against moto_server: folder
marker objects, keys that are not in a clean form, a bucket-less URL, an object rewritten
between the listing and its download, and the limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.errors import ChangedDuringSync, LimitExceeded, ManifestError
from dagfetch.testing import one_repository
from tests.backends.fsspec.hooks import sync_with_hook
from tests.backends.fsspec.test_s3 import PLAIN, VERSIONED, S3Remote, buckets, conn_env
from tests.servers.s3 import MotoServer

__all__ = ["buckets", "conn_env"]  # fixtures shared with the main S3 tests


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_folder_marker_objects_are_ignored(conn_env: MotoServer, tmp_path: Path) -> None:
    """What the console's "Create folder" and many upload tools write: zero-byte keys ending
    in '/', for the prefix itself, for folders holding files and for an empty folder."""
    remote = S3Remote(conn_env, PLAIN)
    for marker in ("", "dags/", "dags/sub/", "empty/"):
        remote.client.put_object(Bucket=PLAIN, Key=f"{remote.prefix}/{marker}", Body=b"")
    remote.write_many({"dags/a.py": b"a = 1\n", "dags/sub/b.py": b"b = 2\n"})
    ws = one_repository(remote, tmp_path)
    result = ws.sync_one("r")
    assert result.ok
    assert tree(ws.path("r")) == {"dags/a.py": b"a = 1\n", "dags/sub/b.py": b"b = 2\n"}
    assert not ws.sync_one("r").changed


def test_keys_not_in_a_clean_form_are_fetched_by_the_stored_key(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, PLAIN)
    stored = {"x//b.py": b"b", "./y.py": b"y", "z/./c.py": b"c", "ok.py": b"ok"}
    for key, data in stored.items():
        remote.client.put_object(Bucket=PLAIN, Key=f"{remote.prefix}/{key}", Body=data)
    ws = one_repository(remote, tmp_path)
    ws.sync_one("r")
    assert tree(ws.path("r")) == {"x/b.py": b"b", "y.py": b"y", "z/c.py": b"c", "ok.py": b"ok"}


def test_an_s3_url_without_a_bucket_is_refused_at_validation(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    ws = one_repository("s3:///dags", tmp_path, conn_id="moto")
    with pytest.raises(ManifestError) as caught:
        ws.validate()
    assert caught.value.field == "dag_repositories.r.url"
    assert "names no bucket" in str(caught.value)


def test_an_object_rewritten_between_listing_and_download_is_never_recorded_mixed(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    """A listed as A, rewritten (same size) to B before its GET, then back to A. Recording
    the listing's ETag (A) with the GET's bytes (B) made every later sync say "unchanged"
    while serving B."""
    remote = S3Remote(conn_env, PLAIN)
    remote.write_many({"dag.py": b"state = 'A'\n", "other.py": b"o"})
    ws = one_repository(remote, tmp_path)
    with pytest.raises(ChangedDuringSync, match=r"dag\.py.*changed during the sync"):
        sync_with_hook(ws, "r", lambda: remote.write("dag.py", b"state = 'B'\n"))
    assert ws.cache.current_id("r") is None  # nothing of that listing was published
    remote.write("dag.py", b"state = 'A'\n")
    ws.sync_one("r")
    assert (ws.path("r") / "dag.py").read_bytes() == b"state = 'A'\n"
    assert not ws.sync_one("r").changed


def test_limits_refuse_a_listing_naming_file_limit_and_field(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    remote = S3Remote(conn_env, PLAIN)
    remote.write_many({"small.py": b"s", "big.py": b"x" * 5000, "c.py": b"c"})
    ws = one_repository(remote, tmp_path, limits={"max_file_bytes": 4096})
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.path == "big.py"
    assert caught.value.field == "dag_repositories.r.limits.max_file_bytes"
    assert "max_file_bytes = 4096" in str(caught.value)
    ws = one_repository(remote, tmp_path / "two", limits={"max_files": 2})
    with pytest.raises(LimitExceeded, match="max_files") as caught:
        ws.sync_one("r")
    assert caught.value.field == "dag_repositories.r.limits.max_files"
    assert ws.cache.current_id("r") is None


def test_a_version_aware_read_gets_the_listed_object_version(
    conn_env: MotoServer, tmp_path: Path
) -> None:
    """Reading object versions, the GET names the listed version: a rewrite after the
    listing does not reach this sync, and the next one sees it."""
    remote = S3Remote(conn_env, VERSIONED, version_aware=True)
    remote.write_many({"dag.py": b"state = 'A'\n"})
    ws = one_repository(remote, tmp_path)
    sync_with_hook(ws, "r", lambda: remote.write("dag.py", b"state = 'B'\n"))
    assert (ws.path("r") / "dag.py").read_bytes() == b"state = 'A'\n"
    assert ws.sync_one("r").changed
    assert (ws.path("r") / "dag.py").read_bytes() == b"state = 'B'\n"


def test_a_refused_connection_is_one_attempt(aws_env: None) -> None:
    """Nothing listens on the endpoint: botocore and s3fs make one attempt each (their own
    backoff took 9-15 s), and the real error they raise is not retried by dagfetch."""
    from dagfetch.backends.fsspec.downloads import is_transient
    from dagfetch.storage import open_filesystem
    from tests.servers.procs import free_port

    store = open_filesystem(
        "s3://bucket/dags", None,
        {"endpoint_url": f"http://127.0.0.1:{free_port()}", "key": "k", "secret": "s"},
        timeouts=(2.0, 2.0),
    )
    assert store.fs.retries == 1  # type: ignore[attr-defined]
    assert store.fs.config_kwargs["retries"] == {"max_attempts": 1, "mode": "standard"}  # type: ignore[attr-defined]
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever s3fs raises
        store.fs.find("bucket/dags")
    assert not is_transient(caught.value)
