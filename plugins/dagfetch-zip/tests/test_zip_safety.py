"""Hostile archives: each is refused with an error naming the member (or the limit), and
the repository's current version keeps serving."""

from __future__ import annotations

import io
import stat
import struct
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from dagfetch_zip import ArchiveError, ArchiveLimitError, ZipFetcher
from zip_helpers import FIXED_TIME, workspace, write_atomic, zip_bytes

from dagfetch.errors import ManifestError, UnsafePathError, VerificationError
from dagfetch.protocol import Source
from dagfetch.workspace import Workspace

GOOD = {"dag.py": b"# a good dag\n", "lib/__init__.py": b"", "lib/utils.py": b"X = 1\n"}
MiB = 1024 * 1024


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return tmp_path / "remote" / "bundle.zip"


@pytest.fixture
def make_ws(tmp_path: Path, archive: Path) -> Callable[..., Workspace]:
    """A workspace whose repository has synced a good archive once."""

    def make(**fields: object) -> Workspace:
        archive.parent.mkdir(exist_ok=True)
        write_atomic(archive, zip_bytes(GOOD))
        ws = workspace(tmp_path, f"zip+file://{archive}", **fields)
        ws.sync_one("z")
        return ws

    return make


def refused(ws: Workspace, archive: Path, data: bytes, error: type[Exception]) -> Exception:
    """Publish ``data`` as the archive; the next sync must fail with ``error`` and leave the
    good version current, no staging leftovers and nothing outside the cache."""
    good = ws.cache.current_id("z")
    write_atomic(archive, data)
    with pytest.raises(error) as caught:
        ws.sync_one("z")
    assert ws.cache.current_id("z") == good
    staging = ws.cache.layout.staging("z")
    assert not staging.exists() or not any(staging.iterdir())
    assert "bundle.zip" in str(caught.value)  # names the archive
    return caught.value


def raw_zip(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of one test
        with zipfile.ZipFile(buf, "w") as zf:
            for info, data in entries:
                zf.writestr(info, data)
    return buf.getvalue()


def info(name: str, mode: int = 0o100644, method: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, FIXED_TIME)
    zi.create_system = 3
    zi.external_attr = mode << 16
    zi.compress_type = method
    return zi


def patch_headers(data: bytes, *, local: tuple[int, str, int], central: tuple[int, str, int]
                  ) -> bytes:
    """Overwrite one field of every local and central header (a crafted, lying archive)."""
    out = bytearray(data)
    for sig, (offset, fmt, value) in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = out.find(sig)
        while at >= 0:
            struct.pack_into(fmt, out, at + offset, value)
            at = out.find(sig, at + 4)
    return bytes(out)


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", "'..' component"),
        ("lib/../../evil.py", "'..' component"),
        ("/etc/evil.py", "absolute path"),
        ("C:/evil.py", "absolute path"),
        ("lib\\evil.py", "backslash"),
        ("lib/\x01evil.py", "control character"),
    ],
)
def test_zip_slip_names_are_refused_by_name(
    make_ws: Callable[..., Workspace], archive: Path, tmp_path: Path, name: str, problem: str
) -> None:
    ws = make_ws()
    data = raw_zip([(info("dag.py"), GOOD["dag.py"]), (info(name), b"import os\n")])
    err = refused(ws, archive, data, UnsafePathError)
    assert isinstance(err, UnsafePathError)
    assert err.path == name and repr(name) in str(err) and problem in str(err)
    assert not list(tmp_path.rglob("evil.py"))


def test_unsafe_name_outside_subdir_still_refuses_the_archive(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws(subdir="lib")
    data = raw_zip([(info("lib/utils.py"), b"X = 2\n"), (info("../evil.py"), b"")])
    refused(ws, archive, data, UnsafePathError)


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "lib/../../x"])
def test_symlink_member_pointing_out_is_refused(
    make_ws: Callable[..., Workspace], archive: Path, target: str
) -> None:
    ws = make_ws()
    link = info("evil.py", stat.S_IFLNK | 0o777)
    data = raw_zip([(info("dag.py"), GOOD["dag.py"]), (link, target.encode())])
    err = refused(ws, archive, data, UnsafePathError)
    assert "'evil.py'" in str(err) and "points outside" in str(err)


def test_symlink_member_inside_the_tree_becomes_a_symlink(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws()
    link = info("lib/alias.py", stat.S_IFLNK | 0o777)
    write_atomic(archive, raw_zip([*((info(n), d) for n, d in GOOD.items()), (link, b"utils.py")]))
    ws.sync_one("z")
    alias = ws.path("z") / "lib/alias.py"
    assert alias.is_symlink() and alias.read_bytes() == b"X = 1\n"


def test_two_members_with_one_name_are_refused(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws()
    data = raw_zip([(info("dag.py"), b"# one\n"), (info("./dag.py"), b"# two\n")])
    err = refused(ws, archive, data, ArchiveError)
    assert "names the same file" in str(err)


# -- zip bombs ---------------------------------------------------------------------------------


def test_zip_bomb_member_over_max_member_size_is_refused(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws()
    bomb = zip_bytes({"dag.py": b"# ok\n", "data/bomb.bin": bytes(101 * MiB)})
    assert len(bomb) < 200_000  # ~100 KB on the wire, 101 MiB inflated
    started = time.monotonic()
    err = refused(ws, archive, bomb, ArchiveLimitError)
    assert time.monotonic() - started < 2  # refused from the central directory, not inflated
    assert isinstance(err, ArchiveLimitError)
    assert err.option == "max_member_size" and err.member == "data/bomb.bin"
    assert "'data/bomb.bin' is 101.0 MiB uncompressed" in str(err)


def test_absurd_compression_ratio_is_refused_and_the_limit_can_be_raised(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    dense = zip_bytes({**GOOD, "data/dense.bin": bytes(2 * MiB)})
    ws = make_ws()
    err = refused(ws, archive, dense, ArchiveLimitError)
    assert isinstance(err, ArchiveLimitError) and err.option == "max_ratio"
    assert "'data/dense.bin' inflates" in str(err) and "max_ratio=100" in str(err)

    relaxed = make_ws(options={"max_ratio": 10_000})
    write_atomic(archive, dense)
    relaxed.sync_one("z")
    assert (relaxed.path("z") / "data/dense.bin").stat().st_size == 2 * MiB


def test_small_members_may_compress_well(make_ws: Callable[..., Workspace], archive: Path) -> None:
    ws = make_ws()
    blank = b"\n" * 500_000  # ~1000:1, but under ratio_min_size (1 MiB)
    write_atomic(archive, zip_bytes({**GOOD, "blank.py": blank}))
    assert ws.sync_one("z").changed
    assert (ws.path("z") / "blank.py").read_bytes() == blank


def test_many_small_members_cannot_add_up_to_a_bomb(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    """Each member under ratio_min_size (exempt one by one), 200 of them: a ~200 KB
    archive inflating to 200 MiB, refused from the central directory."""
    members = {f"data/part{i:03}.py": b"\n" * (MiB - 1) for i in range(200)}
    bomb = zip_bytes({**GOOD, **members})
    assert len(bomb) < 1_000_000
    err = refused(make_ws(), archive, bomb, ArchiveLimitError)
    assert isinstance(err, ArchiveLimitError) and err.option == "max_ratio"
    assert "inflate" in str(err) and "together" in str(err)


def test_the_repository_limits_bound_an_archive_too(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    """dagfetch's own limits table applies to the members as to any backend's files."""
    from dagfetch.errors import LimitExceeded

    ws = make_ws(limits={"max_file_bytes": 1000})
    good = ws.cache.current_id("z")
    write_atomic(archive, zip_bytes({**GOOD, "big.py": b"b" * 5000}))
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("z")
    assert caught.value.path == "big.py"
    assert caught.value.field == "dag_repositories.z.limits.max_file_bytes"
    assert ws.cache.current_id("z") == good


def test_total_size_limit(make_ws: Callable[..., Workspace], archive: Path) -> None:
    ws = make_ws(options={"max_total_size": 1000})
    data = zip_bytes({"a.py": b"a" * 600, "b.py": b"b" * 600})
    err = refused(ws, archive, data, ArchiveLimitError)
    assert isinstance(err, ArchiveLimitError) and err.option == "max_total_size"


def test_too_many_members(make_ws: Callable[..., Workspace], archive: Path) -> None:
    ws = make_ws(options={"max_members": 5})
    data = zip_bytes({f"dag_{i}.py": b"" for i in range(6)})
    err = refused(ws, archive, data, ArchiveLimitError)
    assert isinstance(err, ArchiveLimitError) and err.option == "max_members"
    assert "declares 6 members, more than max_members=5" in str(err)


def test_stream_longer_than_its_header_stops_at_the_declared_size(
    tmp_path: Path, archive: Path
) -> None:
    """A header that understates the size (8 KiB declared, 50 MiB of zeros inside) passes
    every limit; extraction writes at most the declared bytes, then fails the CRC check."""
    archive.parent.mkdir()
    honest = raw_zip([(info("liar.bin"), bytes(50 * MiB))])
    declared = 8192
    lying = patch_headers(honest, local=(22, "<L", declared), central=(24, "<L", declared))
    write_atomic(archive, lying)
    fetcher = ZipFetcher(Source("z", f"zip+file://{archive}"))
    try:
        listing = fetcher.list()
        assert [(f.path, f.size) for f in listing.files] == [("liar.bin", declared)]
        dest = tmp_path / "dest"
        started = time.monotonic()
        with pytest.raises(VerificationError, match=r"'liar\.bin' is corrupt"):
            fetcher.fetch(listing.files, dest)
        assert time.monotonic() - started < 1  # the 50 MiB were never inflated
        assert (dest / "liar.bin").stat().st_size <= declared
    finally:
        fetcher.close()


def test_corrupt_member_fails_verification(make_ws: Callable[..., Workspace], archive: Path
                                           ) -> None:
    ws = make_ws()
    data = bytearray(raw_zip([(info("dag.py", method=zipfile.ZIP_STORED), b"# changed dag\n")]))
    at = data.find(b"# changed dag")
    data[at] = ord("X")  # flip a byte of stored content: the CRC no longer matches
    err = refused(ws, archive, bytes(data), VerificationError)
    assert "'dag.py' is corrupt" in str(err)


# -- unsupported archives ------------------------------------------------------------------------


def test_encrypted_member_is_refused_clearly(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws()
    plain = raw_zip([(info("secret_dag.py"), b"# encrypted, supposedly\n")])
    encrypted = patch_headers(plain, local=(6, "<H", 0x1), central=(8, "<H", 0x1))
    err = refused(ws, archive, encrypted, ArchiveError)
    assert isinstance(err, ArchiveError) and err.member == "secret_dag.py"
    assert "'secret_dag.py' is encrypted" in str(err)


def test_unsupported_compression_method_is_refused(
    make_ws: Callable[..., Workspace], archive: Path
) -> None:
    ws = make_ws()
    plain = raw_zip([(info("dag.py"), b"# deflate64, supposedly\n")])
    deflate64 = patch_headers(plain, local=(8, "<H", 9), central=(10, "<H", 9))
    err = refused(ws, archive, deflate64, ArchiveError)
    assert "'dag.py' uses compression method 9" in str(err)


def test_not_a_zip(make_ws: Callable[..., Workspace], archive: Path) -> None:
    ws = make_ws()
    err = refused(ws, archive, b"this is not an archive" * 100, ArchiveError)
    assert "not a valid zip archive" in str(err)


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["lots", -1, 0, 2.5, True])
def test_bad_limit_option_names_the_manifest_field(tmp_path: Path, value: object) -> None:
    ws = workspace(tmp_path, "zip+file:///nowhere/bundle.zip", options={"max_members": value})
    with pytest.raises(ManifestError) as caught:
        ws.validate()
    assert caught.value.field == "dag_repositories.z.options.max_members"
    assert "positive integer" in str(caught.value)


def test_bad_block_size_names_the_manifest_field(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "zip+file:///nowhere/bundle.zip", options={"block_size": "1MB"})
    with pytest.raises(ManifestError) as caught:
        ws.validate()
    assert caught.value.field == "dag_repositories.z.options.block_size"


@pytest.mark.parametrize(("options", "name", "words"), [
    ({"max_member_sise": 1}, "max_member_sise", "did you mean 'max_member_size'?"),
    ({"anon": True}, "anon", "unknown option"),  # inner-store settings go in storage_options
    ({"storage_options": ["anon"]}, "storage_options", "is not a table"),
])
def test_a_misspelt_option_fails_validation_naming_it(
    tmp_path: Path, options: dict[str, object], name: str, words: str
) -> None:
    ws = workspace(tmp_path, "zip+file:///nowhere/bundle.zip", options=options)
    with pytest.raises(ManifestError) as caught:
        ws.validate()
    assert caught.value.field == f"dag_repositories.z.options.{name}"
    assert words in str(caught.value)


def test_storage_options_reach_the_inner_file_system(tmp_path: Path) -> None:
    fetcher = ZipFetcher(Source("z", "zip+memory:///a/bundle.zip", options={
        "storage_options": {"skip_instance_cache": True, "probe": "inner"},  # fsspec's own
        "max_members": 7,
    }))
    try:
        assert fetcher.fs.storage_options == {"probe": "inner"}  # fsspec keeps what it passes on
        assert fetcher.limits.max_members == 7
    finally:
        fetcher.close()


def test_plain_zip_scheme_asks_for_the_inner_store(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "zip:///srv/bundle.zip")
    with pytest.raises(ManifestError, match="say which store holds the archive") as caught:
        ws.validate()
    assert caught.value.field == "dag_repositories.z.url"
