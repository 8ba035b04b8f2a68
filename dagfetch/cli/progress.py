"""A download progress bar on a terminal; silence everywhere else."""

from __future__ import annotations

import sys
from typing import Any

from dagfetch.models import RemoteFile, SyncResult


class ProgressBar:
    """A :class:`dagfetch.sync.SyncObserver` drawing one tqdm bar per repository download."""

    def __init__(self) -> None:
        self._bar: Any = None

    def started(self, repo_id: str, files: int, nbytes: int) -> None:
        if files == 0:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=nbytes if nbytes > 0 else files,
            unit="B" if nbytes > 0 else "file",
            unit_scale=True,
            desc=repo_id,
            leave=False,
            file=sys.stderr,
        )
        self._by_bytes = nbytes > 0

    def file_done(self, repo_id: str, remote_file: RemoteFile) -> None:
        if self._bar is not None:
            self._bar.update(max(remote_file.size, 0) if self._by_bytes else 1)

    def finished(self, result: SyncResult) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
