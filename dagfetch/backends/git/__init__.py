"""The git backend (``pip install 'dagfetch[git]'``): git://, git+https://, git+http://,
ssh://, ``user@host:path`` and git+file:// through dulwich. See docs/backends/git.md.

``GitFetcher`` is imported on first use, so the manifest can read this package's URL form
(:func:`dagfetch.backends.git.urls.scp_like_scheme`) where dulwich is not installed: the
registry then names the extra to install for the ``ssh`` scheme it points at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagfetch.backends.git.fetcher import GitFetcher

__all__ = ["GitFetcher"]


def __getattr__(name: str) -> Any:
    if name == "GitFetcher":
        from dagfetch.backends.git.fetcher import GitFetcher

        return GitFetcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
