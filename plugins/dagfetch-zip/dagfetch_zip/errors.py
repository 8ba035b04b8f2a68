"""Errors of the zip backend, as subclasses of dagfetch's own tree::

    dagfetch.errors.FetchError
    └── ArchiveError            the archive cannot be used: not a zip, encrypted or
        │                       unsupported member, a member named twice
        └── ArchiveLimitError   a safety limit was hit: member size, compression ratio,
                                total size, member count

Unsafe member *names* (``../x``, ``/etc/x``, ``a\\b``, symlinks out of the tree) raise
:class:`dagfetch.errors.UnsafePathError`, the error every dagfetch backend uses for them.
"""

from __future__ import annotations

from dagfetch.errors import FetchError


class ArchiveError(FetchError):
    """The archive, or one of its members, cannot be used. ``member`` names it when known."""

    def __init__(self, message: str, member: str | None = None) -> None:
        self.member = member
        super().__init__(message)


class ArchiveLimitError(ArchiveError):
    """A member or the whole archive exceeds a safety limit; ``option`` is the one to raise."""

    def __init__(self, message: str, option: str, member: str | None = None) -> None:
        self.option = option
        super().__init__(message, member)
