"""Azure Blob (Azurite) and GCS (gcp-storage-emulator) as real tools and attackers leave
them: folder marker objects, and an object rewritten between the listing and its download
(the S3 cases are in test_s3_hostile.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfetch.errors import ChangedDuringSync, ManifestError
from dagfetch.testing import one_repository
from tests.backends.fsspec.hooks import sync_with_hook
from tests.backends.fsspec.test_azure import AzureRemote, az
from tests.backends.fsspec.test_gcs import GcsRemote, gcs
from tests.servers.azure import Azurite
from tests.servers.gcs import GcsEmulator

__all__ = ["az", "gcs"]  # fixtures shared with the main tests of each store


@pytest.fixture(params=["azure", "gcs"])
def remote(request: pytest.FixtureRequest) -> Any:
    if request.param == "azure":
        return AzureRemote(request.getfixturevalue("az"))
    return GcsRemote(request.getfixturevalue("gcs"))


def test_folder_markers_are_ignored(remote: Any, tmp_path: Path) -> None:
    for marker in ("dags/", "dags/sub/", "empty/"):
        remote.fs.pipe_file(f"{remote.url.split('://', 1)[1]}/{marker}", b"")
    remote.write("dags/a.py", b"a")
    remote.write("dags/sub/b.py", b"b")
    ws = one_repository(remote, tmp_path)
    ws.sync_one("r")
    got = {str(p.relative_to(ws.path("r"))) for p in ws.path("r").rglob("*") if p.is_file()}
    assert got == {"dags/a.py", "dags/sub/b.py"}


def test_an_object_rewritten_between_listing_and_download_is_never_recorded_mixed(
    remote: Any, tmp_path: Path
) -> None:
    remote.write("dag.py", b"state = 'A'\n")
    ws = one_repository(remote, tmp_path)
    with pytest.raises(ChangedDuringSync, match="changed during the sync"):
        sync_with_hook(ws, "r", lambda: remote.write("dag.py", b"state = 'B'\n"))
    assert ws.cache.current_id("r") is None
    remote.write("dag.py", b"state = 'A'\n")
    ws.sync_one("r")
    assert (ws.path("r") / "dag.py").read_bytes() == b"state = 'A'\n"
    assert not ws.sync_one("r").changed


@pytest.mark.parametrize("url", ["gs:///dags", "az:///dags"])
def test_a_url_without_bucket_or_container_is_refused_at_validation(
    url: str, tmp_path: Path, az: Azurite, gcs: GcsEmulator
) -> None:
    conn = "gcs_emulator" if url.startswith("gs") else "azurite"
    ws = one_repository(url, tmp_path, conn_id=conn)
    with pytest.raises(ManifestError) as caught:
        ws.validate()
    assert caught.value.field == "dag_repositories.r.url"


@pytest.mark.parametrize("store", ["azure", "gcs"])
def test_a_refused_connection_is_one_attempt(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, az: Azurite, gcs: GcsEmulator
) -> None:
    """Nothing listens: azure-core retried for 80 s and gcsfs for 35 s before saying so. The
    stores' own retries are off under dagfetch (its retry policy decides), and the real
    error is not one it retries."""
    from dagfetch.backends.fsspec.downloads import is_transient
    from dagfetch.errors import FetchError
    from tests.servers.procs import free_port

    port = free_port()
    closed = f"http://127.0.0.1:{port}"
    if store == "azure":
        monkeypatch.setenv("DAGFETCH_CONN_DEAD",
                           az.connection().replace(f"127.0.0.1:{az.port}", f"127.0.0.1:{port}"))
        url = "az://dags/repo"
    else:
        monkeypatch.setenv("DAGFETCH_CONN_DEAD", gcs.connection(endpoint_url=closed))
        url = "gs://dags/repo"
    ws = one_repository(url, tmp_path, conn_id="dead", options={"retries": 1})
    fetcher = ws.fetcher_for(ws.manifest.get("r"))
    try:
        fs: Any = fetcher.fs  # type: ignore[attr-defined]
        if store == "azure":
            assert fs.service_client._config.retry_policy.total_retries == 0
        else:
            assert "_request" in vars(fs)  # the undecorated request, not gcsfs's retry loop
        with pytest.raises(FetchError, match="Cannot connect") as caught:
            fetcher.list()
        assert not is_transient(caught.value.__context__ or caught.value)
    finally:
        fetcher.close()
