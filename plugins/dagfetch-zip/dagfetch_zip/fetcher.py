"""``ZipFetcher``: a repository that is one zip archive on any fsspec URL.

``zip+<inner>://...`` names the archive by its inner URL: ``zip+file:///srv/dags.zip``,
``zip+s3://bucket/dags.zip``, ``zip+memory://dags.zip``. The archive is opened through fsspec
with small ranged reads, so a listing reads the central directory (the archive's tail), not
the whole archive, and a fetch reads only the members asked for.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from dagfetch.errors import (
    DagfetchError,
    FetchError,
    ManifestError,
    RemoteNotFoundError,
    VerificationError,
)
from dagfetch.models import Listing, RemoteFile
from dagfetch.options import parse_options
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.redact import get_logger, mask, redact_url
from dagfetch.storage import open_filesystem
from dagfetch_zip.archive import Member, declared_entries, read_table
from dagfetch_zip.errors import ArchiveError, ArchiveLimitError
from dagfetch_zip.limits import ZipOptions, human

log = get_logger(__name__)

_CHUNK = 256 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024  # larger archives spill to a temporary file


class ZipFetcher(BaseFetcher):
    """Options (the manifest entry's ``options``, see :class:`ZipOptions`): the limits
    (``max_member_size``, ``max_total_size``, ``max_ratio``, ``ratio_min_size``,
    ``max_members``), ``block_size`` (bytes per ranged read) and ``storage_options`` (for
    the inner store's file system); any other key is refused. ``conn_id`` credentials map
    as for the built-in fsspec backend (:mod:`dagfetch.storage`)."""

    capabilities = Capabilities(incremental=True, versioned=False, named_versions=False,
                                concurrent=False)

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        scheme, _, rest = source.url.partition("://")
        _, plus, inner = scheme.partition("+")
        if not plus or not inner or not rest:
            raise ManifestError(
                f"{source.field}.url",
                f"{redact_url(source.url)!r}: say which store holds the archive, as in "
                "zip+file:///srv/dags.zip, zip+s3://bucket/dags.zip or zip+https://host/dags.zip",
            )
        self.protocol = inner.lower()
        self.where = redact_url(source.url)
        self.options = parse_options(ZipOptions, source.options, field=f"{source.field}.options")
        self.limits = self.options  # the limits are the first fields of the options
        self.block_size = self.options.block_size
        self.subdir = source.subdir.strip("/") if source.subdir else None
        store = open_filesystem(
            f"{inner}://{rest}", source.connection, self.options.storage_options,
            where=self.where,
        )
        self.fs, self.path = store.fs, store.path
        # the archive opened by the last list(), reused by fetch() so one sync reads the
        # central directory once; fetch() still checks every member against the listing
        self._open: tuple[IO[bytes], zipfile.ZipFile, dict[str, Member]] | None = None

    # -- the protocol ------------------------------------------------------------------------

    def list(self) -> Listing:
        self._close_archive()
        with self._errors("listing the archive"):
            fp, zf, table = self._open_archive()
            size = fp.size if hasattr(fp, "size") else None
            self._open = (fp, zf, table)
        files = [
            RemoteFile(m.path, 0 if m.target is not None else m.info.file_size, m.token,
                       kind="symlink" if m.target is not None else "file", target=m.target)
            for m in table.values()
        ]
        extra = {"archive_size": str(size)} if size is not None else {}
        return Listing.of(files, **extra)

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        with self._errors("reading the archive"):
            if self._open is None:
                self._open = self._open_archive()
            _, zf, table = self._open
            wanted: list[tuple[RemoteFile, Member]] = []
            for f in files:
                member = table.get(f.path)
                if member is None or member.token != f.token:
                    raise FetchError(
                        f"{self.where}: member {f.path!r} changed or vanished since the "
                        "listing (the archive was replaced during the sync); sync again"
                    )
                wanted.append((f, member))
            # in archive order: ranged reads then move forward through the archive
            for f, member in sorted(wanted, key=lambda p: p[1].info.header_offset):
                target = dest / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                if member.target is not None:
                    os.symlink(member.target, target)
                else:
                    self._extract(zf, member, target)
                if on_file_done is not None:
                    on_file_done(f)

    def close(self) -> None:
        self._close_archive()

    # -- internals -----------------------------------------------------------------------------

    def _open_archive(self) -> tuple[IO[bytes], zipfile.ZipFile, dict[str, Member]]:
        self.fs.invalidate_cache(self.path)  # a cached info() would hide a replaced archive
        fp: IO[bytes] = self.fs.open(
            self.path, "rb", block_size=self.block_size, cache_type="readahead"
        )
        if not _seekable(fp):
            fp = self._download_whole(fp)
        try:
            count = declared_entries(fp)
            if count is not None and count > self.limits.max_members:
                raise ArchiveLimitError(
                    f"{self.where}: the archive declares {count} members, more than "
                    f"max_members={self.limits.max_members}", "max_members",
                )
            try:
                zf = zipfile.ZipFile(fp)
            except zipfile.BadZipFile as exc:
                raise ArchiveError(f"{self.where}: not a valid zip archive ({exc})") from None
            try:
                table = read_table(zf, self.limits, self.subdir, self.where)
            except BaseException:
                zf.close()
                raise
        except BaseException:
            fp.close()
            raise
        return fp, zf, table

    def _download_whole(self, stream: IO[bytes]) -> IO[bytes]:
        """The store serves no ranged reads (an HTTP server without ``Accept-Ranges``): read
        the archive once into a spooled temporary file, capped at ``max_total_size``."""
        log.info("%s: the store serves no ranged reads; downloading the archive whole",
                 self.where)
        cap = self.limits.max_total_size
        # returned open: the caller owns it (closed with the archive)
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            with stream:
                while chunk := stream.read(_CHUNK):
                    if spool.tell() + len(chunk) > cap:
                        raise ArchiveLimitError(
                            f"{self.where}: the store serves no ranged reads, so the archive "
                            f"is downloaded whole, and it is larger than "
                            f"max_total_size={human(cap)}", "max_total_size",
                        )
                    spool.write(chunk)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def _extract(self, zf: zipfile.ZipFile, member: Member, target: Path) -> None:
        """Stream one member to ``target``, counting bytes: the declared size is a claim,
        not a promise, so writing stops the moment the stream goes past it."""
        declared = member.info.file_size
        name = member.info.orig_filename
        written = 0
        try:
            with zf.open(member.info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > declared:
                        raise ArchiveLimitError(
                            f"{self.where}: member {name!r} inflates past its declared size "
                            f"of {declared} bytes", "max_member_size", name,
                        )
                    out.write(chunk)
        except zipfile.BadZipFile as exc:  # CRC mismatch, bad local header
            raise VerificationError(f"{self.where}: member {name!r} is corrupt ({exc})") from None
        except (RuntimeError, NotImplementedError) as exc:  # zipfile's encrypted/unsupported
            raise ArchiveError(f"{self.where}: member {name!r}: {exc}", name) from None
        if written != declared:
            raise VerificationError(
                f"{self.where}: member {name!r} gave {written} bytes, its header says {declared}"
            )

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Map fsspec's and zipfile's errors to dagfetch's, naming the archive (never a
        secret: the URL is redacted and lower-library text masked)."""
        try:
            yield
        except DagfetchError:
            self._close_archive()
            raise
        except FileNotFoundError:
            self._close_archive()
            raise RemoteNotFoundError(f"{self.where}: archive not found") from None
        except zipfile.BadZipFile as exc:
            self._close_archive()
            raise ArchiveError(f"{self.where}: {action} failed: {mask(str(exc))}") from None
        except Exception as exc:
            self._close_archive()
            raise FetchError(f"{self.where}: {action} failed: {mask(str(exc))}") from None

    def _close_archive(self) -> None:
        if self._open is not None:
            fp, zf, _ = self._open
            self._open = None
            zf.close()
            fp.close()


def _seekable(fp: IO[bytes]) -> bool:
    """fsspec's streaming files (HTTP without ranges) say they are seekable, allow the no-op
    ``seek(0)``, and refuse any real seek. Seeking moves no bytes on a ranged file."""
    try:
        fp.seek(0, 2)
        fp.seek(0)
    except (ValueError, OSError):
        return False
    return True
