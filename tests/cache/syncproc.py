"""Run in a child process by the cache tests: sync one repository of a manifest.

    python -m tests.cache.syncproc MANIFEST CACHE REPO [--slow MARKER]

With ``--slow``, downloads go one file at a time with a pause, and MARKER is created once the
first file is written: the parent then knows the child is mid-download (to SIGKILL it).
Prints the resulting version id.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dagfetch.backends.fsspec import FsspecFetcher
from dagfetch.models import RemoteFile
from dagfetch.protocol import FileDone, Source
from dagfetch.registry import Registry
from dagfetch.workspace import Workspace


class SlowFetcher(FsspecFetcher):
    marker: Path | None = None

    def __init__(self, source: Source) -> None:
        super().__init__(Source(source.repo_id, "file://" + source.url.split("://", 1)[1]))

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        for i, f in enumerate(files):
            super().fetch([f], dest, on_file_done)
            if i == 0 and self.marker is not None:
                self.marker.touch()
            time.sleep(0.2)


def main(argv: list[str]) -> None:
    manifest, cache, repo = argv[:3]
    registry = None
    if "--slow" in argv:
        SlowFetcher.marker = Path(argv[argv.index("--slow") + 1])
        registry = Registry()
        registry.register("file", SlowFetcher)
    ws = Workspace.from_manifest(manifest, cache_root=cache, registry=registry)
    print(ws.sync_one(repo).version_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
