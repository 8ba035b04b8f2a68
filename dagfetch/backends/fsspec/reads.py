"""Reading one object into staging, tied to what the listing saw and bounded by the limits.

A listing and the downloads that follow it are separate requests: an object rewritten in
between must not be recorded with the listing's change token and the other content's bytes
(the next sync would call it "unchanged" for good). So each read asks the store for the
listed object only, and anything else is :class:`~dagfetch.errors.ChangedDuringSync`:

- S3: ``If-Match`` on the listed ETag (the object version instead, when versions are read),
  and the response's ETag compared as well (for a store that ignores ``If-Match``);
- Azure Blob: ``If-Match`` on the listed ETag (``match_condition``), or the version id;
- HTTP: the response's ETag, else its Last-Modified, compared with the listing's;
- GCS: the object generation when versions are read (``#generation``), and the listed MD5
  checked against the bytes (composite objects have none: their generation is the token);
  any other asynchronous store: its own ``_get_file``, the listed MD5 checked likewise;
- ``file://``: one descriptor opened without following links (every folder of the path
  too), its ``fstat`` compared with the listing; the bytes are copied from that descriptor.

Every read writes through a :class:`Sink` that counts bytes into the fetch's
:class:`~dagfetch.limits.ByteBudget` *before* writing them: the first chunk past the listed
size or a limit stops the read, and nothing past it reaches the disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from dagfetch.backends.fsspec.s3client import speed_up
from dagfetch.errors import ChangedDuringSync
from dagfetch.limits import FileBudget
from dagfetch.models import RemoteFile
from dagfetch.storage.tokens import change_token

CHUNK = 256 * 1024


class Sink:
    """A local file written chunk by chunk, each chunk counted before it is written and
    hashed as it is written, so the cache need not read the file back to hash it."""

    def __init__(self, local: Path, budget: FileBudget) -> None:
        self.local = local
        self.budget = budget
        self._sha = hashlib.sha256()
        self._whole = True  # every byte of the file went through write()
        self._fh = open(local, "wb")  # noqa: SIM115 - closed by close(), on every path

    def write(self, data: bytes) -> int:
        self.budget.add(len(data))
        self._sha.update(data)
        return self._fh.write(data)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def hand_over(self) -> None:
        """Close the file for a file system that writes it itself: its bytes are not seen
        here, so :meth:`sha256` has none to give."""
        self._whole = False
        self.close()

    def sha256(self) -> str | None:
        """The sha256 of what :meth:`write` wrote (None after :meth:`hand_over`)."""
        return self._sha.hexdigest() if self._whole else None


def _changed(remote_file: RemoteFile, why: str) -> ChangedDuringSync:
    return ChangedDuringSync(
        f"{remote_file.path}: changed during the sync ({why}); nothing of this listing is "
        "recorded, the next sync fetches it again"
    )


def listed_etag(remote_file: RemoteFile) -> str | None:
    token = remote_file.token
    return token[len("etag:"):] if token.startswith("etag:") else None


def _precondition_failed(exc: BaseException) -> bool:
    """The store refused a conditional request (HTTP 412), whatever the library calls it."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        status = getattr(seen, "status_code", None) or getattr(seen, "status", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", status)
        if status == 412 or "PreconditionFailed" in repr(seen) or (
            type(seen).__name__ == "ResourceModifiedError"
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


Reader = Callable[[Any, str, RemoteFile, Sink], Awaitable[None]]


async def read_s3(fs: Any, path: str, remote_file: RemoteFile, sink: Sink) -> None:
    bucket, key, version = fs.split_path(path)
    kwargs = dict(fs.req_kw)
    etag = listed_etag(remote_file)
    if version:
        kwargs["VersionId"] = version
    elif etag:
        kwargs["IfMatch"] = f'"{etag}"'
    try:
        response = await fs._call_s3("get_object", Bucket=bucket, Key=key, **kwargs)
    except Exception as exc:
        if _precondition_failed(exc):
            raise _changed(remote_file, "its ETag is no longer the listed one") from None
        raise
    body = response["Body"]
    try:
        got = str(response.get("ETag") or "").strip('"')
        if etag and got and got != etag:
            raise _changed(remote_file, f"listed with ETag {etag}, served with {got}")
        while chunk := await body.read(CHUNK):
            sink.write(chunk)
    finally:
        body.close()


async def read_azure(fs: Any, path: str, remote_file: RemoteFile, sink: Sink) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceNotFoundError

    container, blob, version = fs.split_path(path)
    kwargs: dict[str, Any] = dict(getattr(fs, "_timeout_kwargs", {}))
    etag = listed_etag(remote_file)
    if version:
        kwargs["version_id"] = version
    elif etag:
        kwargs.update(etag=f'"{etag}"', match_condition=MatchConditions.IfNotModified)
    async with fs.service_client.get_blob_client(container, blob) as client:
        try:
            stream = await client.download_blob(**kwargs)
        except ResourceNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "not found", path) from None
        except Exception as exc:
            if _precondition_failed(exc):
                raise _changed(remote_file, "its ETag is no longer the listed one") from None
            raise
        async for chunk in stream.chunks():
            sink.write(chunk)


async def read_http(fs: Any, url: str, remote_file: RemoteFile, sink: Sink) -> None:
    session = await fs.set_session()
    async with session.get(fs.encode_url(url), **fs.kwargs) as response:
        if response.status == 404:
            raise FileNotFoundError(errno.ENOENT, "not found", url)
        response.raise_for_status()
        token = remote_file.token
        etag = (response.headers.get("ETag") or "").strip().strip('"')
        modified = response.headers.get("Last-Modified") or ""
        if token.startswith("etag:") and etag and token != f"etag:{etag}":
            raise _changed(remote_file, f"listed with ETag {token[5:]}, served with {etag}")
        if token.startswith("modified:") and modified and token != f"modified:{modified}":
            raise _changed(remote_file, f"listed as modified {token[9:]}, served as {modified}")
        async for chunk in response.content.iter_chunked(CHUNK):
            sink.write(chunk)


def _counting_callback(budget: FileBudget) -> Any:
    from fsspec.callbacks import Callback

    class Counting(Callback):  # type: ignore[misc]
        def relative_update(self, inc: int | None = 1) -> None:
            budget.add(inc or 0)

    return Counting()


def _check_written(remote_file: RemoteFile, sink: Sink) -> None:
    """After a file system wrote the file itself: count what it did not report, and check
    the listed MD5 when there is one."""
    size = os.path.getsize(sink.local)
    if size > sink.budget.received:
        sink.budget.add(size - sink.budget.received)
    digest = remote_file.digest
    if digest and digest.startswith("md5:"):
        md5 = hashlib.md5(usedforsecurity=False)
        with open(sink.local, "rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
        if md5.hexdigest() != digest[4:]:
            raise _changed(remote_file, "its bytes are not the listed MD5")


async def read_by_get_file(
    fs: Any, path: str, remote_file: RemoteFile, sink: Sink,
    get_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """GCS, and any other asynchronous file system: its own ``_get_file`` writes the file,
    with a callback counting each chunk into the budget (gcsfs writes chunks of 128 KiB, so
    a read stops within one chunk past a limit); then the bytes are checked against the
    listed MD5 when there is one (GCS gives it for every object but composite ones, whose
    generation is their token)."""
    sink.hand_over()
    await fs._get_file(path, str(sink.local), callback=_counting_callback(sink.budget),
                       **(get_kwargs or {}))
    _check_written(remote_file, sink)


def read_chained(fs: Any, path: str, remote_file: RemoteFile, sink: Sink) -> None:
    """A chained URL (``simplecache::s3://...``): the chain's own ``get_file``, which reaches
    the store (a cache's ``open`` would serve the bytes it kept from before); bytes it does
    not report as they arrive are counted once written."""
    sink.hand_over()
    fs.get_file(path, str(sink.local), callback=_counting_callback(sink.budget))
    _check_written(remote_file, sink)


# by store family (dagfetch.storage.families); any other: read_by_get_file
READERS: dict[str, Reader] = {"s3": read_s3, "azure": read_azure, "http": read_http}


async def prepare_s3(fs: Any) -> None:
    """s3fs's client, made, and made cheaper per request (botocore's timestamps parsed the
    fast way, its User-Agent header built once: :mod:`~dagfetch.backends.fsspec.s3client`)."""
    await fs.set_session()
    speed_up(getattr(fs, "s3", None))


# by store family: what to do to a file system before its first listing or download
PREPARE: dict[str, Callable[[Any], Awaitable[None]]] = {"s3": prepare_s3}


def read_memory(fs: Any, path: str, remote_file: RemoteFile, sink: Sink) -> None:
    """A synchronous file system other than the local one (memory://...)."""
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sink.write(chunk)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def read_local(root: str, remote_file: RemoteFile, sink: Sink) -> None:
    """Copy a local file through one descriptor: every folder of its path and the file are
    opened without following symlinks, from the repository root down, so a file swapped for
    a link (or a folder for a link to ``/``) between the listing and the copy is refused,
    never followed; the opened file's ``fstat`` must be the listed one."""
    parts = remote_file.extra.get("key", remote_file.path).split("/")
    fds: list[int] = []
    try:
        fd = os.open(root, os.O_RDONLY | _DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        fds.append(fd)
        for part in parts[:-1]:
            fd = _open_at(part, fd, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, remote_file)
            fds.append(fd)
        fd = _open_at(parts[-1], fd, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK, remote_file)
        fds.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _changed(remote_file, "it is no longer a regular file")
        now = change_token({"mtime": st.st_mtime, "ino": st.st_ino, "size": st.st_size})
        if now != remote_file.token or (0 <= remote_file.size != st.st_size):
            raise _changed(remote_file, "its size, mtime or inode is no longer the listed one")
        while chunk := os.read(fd, CHUNK):
            sink.write(chunk)
    finally:
        for opened in reversed(fds):
            os.close(opened)


def _open_at(name: str, dir_fd: int, flags: int, remote_file: RemoteFile) -> int:
    try:
        return os.open(name, flags | getattr(os, "O_CLOEXEC", 0), dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise _changed(remote_file, f"{name!r} is a symlink now; it is not followed") from None
        raise
