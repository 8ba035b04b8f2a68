"""The git backend (``pip install 'dagfetch[git]'``): git://, git+https://, git+http://,
ssh://, ``user@host:path`` and git+file:// through dulwich. See docs/backends/git.md."""

from dagfetch.backends.git.fetcher import GitFetcher

__all__ = ["GitFetcher"]
