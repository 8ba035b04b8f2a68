"""Pins: ``<repo>/.meta/pins/<version_id>/<holder>``, one empty file per holder of a version.

gc keeps a pinned version and its tree. The callers (:class:`~dagfetch.cache.store.VersionCache`)
hold the repository's lock while they add or remove a pin, so gc never evicts between the
check that a version exists and its pin.
"""

from __future__ import annotations

import attrs

from dagfetch.cache.layout import CacheLayout
from dagfetch.errors import CacheError


@attrs.frozen
class PinStore:
    layout: CacheLayout

    def add(self, repo_id: str, version_id: str, holder: str) -> None:
        folder = self.layout.pins(repo_id, version_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / holder_name(holder)).touch()

    def remove(self, repo_id: str, version_id: str, holder: str) -> bool:
        """Drop ``holder``'s pin; False if it held none."""
        folder = self.layout.pins(repo_id, version_id)
        marker = folder / holder_name(holder)
        if not marker.exists():
            return False
        marker.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
        return True

    def of(self, repo_id: str) -> dict[str, list[str]]:
        """version_id -> its holders, for every pinned version of a repository."""
        base = self.layout.pins(repo_id)
        if not base.exists():
            return {}
        return {d.name: sorted(h.name for h in d.iterdir()) for d in base.iterdir() if d.is_dir()}


def holder_name(holder: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in holder)
    if not safe or safe.startswith("."):
        raise CacheError(f"{holder!r} is not a usable pin holder name")
    return safe
