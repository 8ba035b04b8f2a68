"""The generic backend: any fsspec file system (file://, memory://, s3://, gs://, az://, ...).

One listing call (``find`` with details) describes the remote; downloads go through fsspec's
own concurrent bulk ``get`` on async file systems (s3fs, gcsfs, adlfs, http) and through a
bounded thread pool on the others, with retries on transient errors.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from dagfetch.backends.fsspec_tokens import change_token, digest
from dagfetch.connections import Connection
from dagfetch.errors import BackendNotInstalled, FetchError, RemoteNotFoundError
from dagfetch.models import Listing, RemoteFile
from dagfetch.protocol import BaseFetcher, Capabilities, FileDone, Source
from dagfetch.redact import get_logger, mask, redact_url
from dagfetch.registry import INSTALL_HINTS

log = get_logger(__name__)

DEFAULT_CONCURRENCY = 16
DEFAULT_RETRIES = 4


def storage_options(protocol: str, connection: Connection | None) -> dict[str, Any]:
    """fsspec keyword arguments from a connection: ``extra`` as is, plus login/password mapped
    to the names each file system expects."""
    if connection is None:
        return {}
    options = connection.revealed_extra()
    login = connection.login
    password = connection.password.reveal() if connection.password else None
    if protocol in ("s3", "s3a"):
        if login:
            options.setdefault("key", login)
        if password:
            options.setdefault("secret", password)
    elif protocol in ("http", "https") and login:
        import aiohttp

        options.setdefault("client_kwargs", {})["auth"] = aiohttp.BasicAuth(login, password or "")
    elif protocol in ("az", "abfs", "abfss"):
        if login:
            options.setdefault("account_name", login)
        if password:
            options.setdefault("account_key", password)
    return options


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    return isinstance(exc, (OSError, TimeoutError, ConnectionError)) or "Throttl" in repr(exc)


class FsspecFetcher(BaseFetcher):
    """Fetch from any fsspec URL. Options (manifest ``options``): ``concurrency``, ``retries``,
    plus anything else, passed to the file system as storage options."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        protocol, _, rest = source.url.partition("://")
        self.protocol = protocol.lower() if rest else "file"
        options = dict(source.options)
        self.concurrency = int(options.pop("concurrency", DEFAULT_CONCURRENCY))
        self.retries = int(options.pop("retries", DEFAULT_RETRIES))
        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except (ImportError, ValueError) as exc:
            hint = INSTALL_HINTS.get(self.protocol, "install the fsspec implementation for it")
            raise BackendNotInstalled(self.protocol, mask(f"{exc}; {hint}")) from exc
        kwargs = {**storage_options(self.protocol, source.connection), **options}
        try:
            self.fs = cls(**kwargs)
        except Exception as exc:
            raise FetchError(
                f"{redact_url(source.url)}: cannot open the file system: {mask(str(exc))}"
            ) from None
        root = cls._strip_protocol(source.url)
        if source.subdir:
            root = posixpath.join(root, source.subdir)
        self.root = root.rstrip("/") or "/"
        self.capabilities = Capabilities(
            incremental=True, versioned=False, concurrent=bool(getattr(self.fs, "async_impl", 0))
            or self.concurrency > 1,
        )

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.retries),
            wait=wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
            retry=retry_if_exception(_transient),
            reraise=True,
        )

    def _where(self, path: str | None = None) -> str:
        url = redact_url(self.source.url)
        return f"{url} ({path})" if path else url

    def list(self) -> Listing:
        try:
            # a cached listing would hide changes: always ask the store
            self.fs.invalidate_cache(self.root)
            found = self._retrying()(self.fs.find, self.root, withdirs=False, detail=True)
        except FileNotFoundError:
            raise RemoteNotFoundError(f"{self._where()}: not found") from None
        except Exception as exc:
            raise FetchError(f"{self._where()}: listing failed: {mask(str(exc))}") from None
        if not found and not self.fs.exists(self.root):
            raise RemoteNotFoundError(f"{self._where()}: not found")
        files = [self._remote_file(name, info) for name, info in found.items()]
        return Listing.of(f for f in files if f is not None)

    def _relpath(self, name: str) -> str:
        name = self.fs._strip_protocol(name)
        root = self.root.rstrip("/")
        if root and name.startswith(root + "/"):
            return name[len(root) + 1 :]
        if root in ("", "/"):
            return name.lstrip("/")
        return posixpath.relpath(name, root)

    def _remote_file(self, name: str, info: dict[str, Any]) -> RemoteFile | None:
        rel = self._relpath(name)
        if info.get("islink"):
            target = os.readlink(name)
            return RemoteFile(rel, 0, f"link:{target}", kind="symlink", target=target)
        if info.get("type") not in (None, "file"):
            return None
        size = info.get("size")
        return RemoteFile(rel, -1 if size is None else int(size), change_token(info), digest(info))

    def fetch(
        self, files: Sequence[RemoteFile], dest: Path, on_file_done: FileDone | None = None
    ) -> None:
        pairs = [(f, posixpath.join(self.root, f.path), dest / f.path) for f in files]
        for _, _, local in pairs:
            local.parent.mkdir(parents=True, exist_ok=True)

        def one(item: tuple[RemoteFile, str, Path]) -> None:
            remote_file, remote, local = item
            try:
                self._retrying()(self.fs.get_file, remote, str(local))
            except FileNotFoundError:
                raise RemoteNotFoundError(
                    f"{self._where(remote_file.path)}: vanished during the sync"
                ) from None
            except Exception as exc:
                raise FetchError(
                    f"{self._where(remote_file.path)}: download failed: {mask(str(exc))}"
                ) from None
            if on_file_done is not None:
                on_file_done(remote_file)

        if self.concurrency <= 1 or len(pairs) <= 1:
            for item in pairs:
                one(item)
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(pairs))) as pool:
            for _ in pool.map(one, pairs):
                pass
