"""The table of contents of one archive: which members become which files, and what is refused.

Everything here reads the central directory only (plus the few bytes of a symlink's target).
Names are checked for every member, also those outside ``subdir``: an archive carrying a
``../`` name is hostile and is refused as a whole. Size, ratio and encryption are checked for
the members that would be fetched.
"""

from __future__ import annotations

import stat
import struct
import zipfile
from typing import IO

import attrs

from dagfetch.errors import UnsafePathError
from dagfetch.paths import safe_link_target, safe_relpath
from dagfetch_zip.errors import ArchiveError, ArchiveLimitError
from dagfetch_zip.limits import Limits, human

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_COMMENT = 0xFFFF
_MAX_LINK_TARGET = 4096
SUPPORTED_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}


def declared_entries(fp: IO[bytes]) -> int | None:
    """How many entries the archive's end record declares, read from its tail alone, so a
    central directory of millions of entries is refused before it is downloaded and parsed.
    None when the tail is not understood: zipfile then reports the problem itself."""
    size = fp.seek(0, 2)
    tail_len = min(size, _EOCD.size + _MAX_COMMENT)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    total = _EOCD.unpack_from(tail, at)[4]
    if total != 0xFFFF:
        return int(total)
    # zip64: the real count lives in a record the locator (just before the end record) points at
    if at < _ZIP64_LOCATOR.size:
        return None
    sig, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
    if sig != b"PK\x06\x07" or offset + _ZIP64_EOCD.size > size:
        return None
    fp.seek(offset)
    record = fp.read(_ZIP64_EOCD.size)
    if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
        return None
    return int(_ZIP64_EOCD.unpack(record)[7])


def member_token(info: zipfile.ZipInfo) -> str:
    """Equal CRC-32 and size promise equal bytes (a 1 in 2**32 chance of a miss per edit that
    keeps the size). The archive's own identity is left out on purpose: rebuilding the archive
    must not make every unchanged member look changed."""
    return f"crc32:{info.CRC:08x}:size:{info.file_size}"


def is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


@attrs.frozen
class Member:
    """A member that becomes one file (or symlink) of the repository."""

    path: str  # relative to subdir, normalized
    info: zipfile.ZipInfo
    target: str | None = None  # for symlinks

    @property
    def token(self) -> str:
        return f"link:{self.target}" if self.target is not None else member_token(self.info)


def read_table(
    zf: zipfile.ZipFile, limits: Limits, subdir: str | None, where: str
) -> dict[str, Member]:
    """Every usable member under ``subdir``, by its path relative to ``subdir``."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveLimitError(
            f"{where}: {len(infos)} members, more than max_members={limits.max_members}",
            "max_members",
        )
    prefix = f"{subdir}/" if subdir else ""
    seen: dict[str, str] = {}
    table: dict[str, Member] = {}
    total = 0
    compressed = 0
    for info in infos:
        path = _checked_name(info, where)
        if path is None:
            continue
        if path in seen:
            raise ArchiveError(
                f"{where}: member {info.orig_filename!r} names the same file as "
                f"{seen[path]!r}", info.orig_filename,
            )
        seen[path] = info.orig_filename
        link = is_symlink(info)
        if link:
            target = _link_target(zf, info, path, where)
        if not path.startswith(prefix):
            continue
        rel = path[len(prefix) :]
        if link:
            table[rel] = Member(rel, info, target)
            continue
        _check_member(info, limits, where)
        total += info.file_size
        compressed += info.compress_size
        if total > limits.max_total_size:
            raise ArchiveLimitError(
                f"{where}: members add up to more than max_total_size="
                f"{human(limits.max_total_size)} (at {info.orig_filename!r})",
                "max_total_size", info.orig_filename,
            )
        table[rel] = Member(rel, info)
    _check_whole_ratio(total, compressed, limits, where)
    return table


def _check_whole_ratio(total: int, compressed: int, limits: Limits, where: str) -> None:
    """``max_ratio`` for the members together: each member under ``ratio_min_size`` may
    compress absurdly well (a file of blank lines), but a thousand of them made a 1.1 MB
    archive inflate to 1.0 GB with every member exempt."""
    ratio = total / max(compressed, 1)
    if total >= limits.ratio_min_size and ratio > limits.max_ratio:
        raise ArchiveLimitError(
            f"{where}: its members inflate {ratio:.0f}:1 together ({human(compressed)} to "
            f"{human(total)}), more than max_ratio={limits.max_ratio:g}", "max_ratio",
        )


def _checked_name(info: zipfile.ZipInfo, where: str) -> str | None:
    """The member's clean path, None for a folder entry; UnsafePathError by name otherwise.
    ``orig_filename`` is the name as stored: zipfile cuts ``filename`` at a NUL byte."""
    name = info.orig_filename
    if info.is_dir():
        if not name.strip("/."):  # "./" or "/" entries some tools write: nothing to create
            return None
        name = name.rstrip("/")
    try:
        path = safe_relpath(name)
    except UnsafePathError as exc:
        raise UnsafePathError(info.orig_filename, f"{exc.problem} (member of {where})") from None
    return None if info.is_dir() else path


def _link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, where: str) -> str:
    if info.file_size > _MAX_LINK_TARGET or info.flag_bits & 0x1:
        raise UnsafePathError(info.orig_filename, f"unreadable symlink target (member of {where})")
    target = zf.read(info).decode("utf-8", errors="replace")
    try:
        return safe_link_target(path, target)
    except UnsafePathError as exc:
        raise UnsafePathError(info.orig_filename, f"{exc.problem} (member of {where})") from None


def _check_member(info: zipfile.ZipInfo, limits: Limits, where: str) -> None:
    name = info.orig_filename
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{where}: member {name!r} is encrypted; dagfetch-zip does not decrypt archives "
            "(publish the archive unencrypted and protect the store that holds it)", name,
        )
    if info.compress_type not in SUPPORTED_METHODS:
        raise ArchiveError(
            f"{where}: member {name!r} uses compression method {info.compress_type}; "
            f"supported: {', '.join(SUPPORTED_METHODS.values())}", name,
        )
    if info.file_size > limits.max_member_size:
        raise ArchiveLimitError(
            f"{where}: member {name!r} is {human(info.file_size)} uncompressed, more than "
            f"max_member_size={human(limits.max_member_size)}", "max_member_size", name,
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_min_size and ratio > limits.max_ratio:
        raise ArchiveLimitError(
            f"{where}: member {name!r} inflates {ratio:.0f}:1 ({human(info.compress_size)} to "
            f"{human(info.file_size)}), more than max_ratio={limits.max_ratio:g}",
            "max_ratio", name,
        )
