"""A fetcher wrapper that runs a test's hook between the listing and the download, to change
the remote under a sync's feet at exactly that moment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dagfetch.models import Listing, RemoteFile, SyncResult
from dagfetch.protocol import Capabilities, Fetcher, FileDone
from dagfetch.workspace import Workspace


class AfterListing:
    def __init__(self, inner: Fetcher, hook: Callable[[], None]) -> None:
        self.inner = inner
        self.hook = hook
        self.capabilities: Capabilities = inner.capabilities

    def list(self) -> Listing:
        listing = self.inner.list()
        self.hook()
        return listing

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        self.inner.fetch(files, dest, on_file_done)

    def close(self) -> None:
        self.inner.close()


def sync_with_hook(ws: Workspace, repo_id: str, hook: Callable[[], None]) -> SyncResult:
    """One sync of ``repo_id`` whose remote ``hook`` changes right after the listing."""
    spec = ws.manifest.get(repo_id)
    fetcher = AfterListing(ws.fetcher_for(spec), hook)
    try:
        return ws.syncer.sync(spec, fetcher)
    finally:
        fetcher.close()
