"""Helpers for the zip backend's tests: real archives on disk, in memory and behind a real
HTTP server (with Range support, counting the bytes it sends)."""

from __future__ import annotations

import io
import os
import re
import threading
import uuid
import zipfile
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fsspec

from dagfetch.testing import one_repository
from dagfetch.workspace import Workspace

FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def zip_bytes(members: Mapping[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A deterministic archive (fixed timestamps, sorted members)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ZipRemote:
    """The conformance suite's remote: a real zip file on disk, rebuilt by ``publish``.

    ``write``/``delete`` edit the member set; ``publish`` writes the whole archive to a
    temporary name and renames it into place, as a release job would."""

    unsafe_names = True  # a zip member can be called ../escaped.py
    symlinks = False

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self.members: dict[str, bytes] = {}
        self.url = url or f"zip+file://{path}"
        self.missing_url = f"zip+file://{path.with_name('nowhere.zip')}"
        self.entry: dict[str, Any] = {}

    def write(self, path: str, data: bytes) -> None:
        self.members[path] = data

    def delete(self, path: str) -> None:
        del self.members[path]

    def push(self) -> None:
        write_atomic(self.path, zip_bytes(self.members))


class MemoryZipRemote(ZipRemote):
    """The same archive kept in fsspec's memory file system, reached as ``zip+memory://``."""

    def __init__(self) -> None:
        self.fs = fsspec.filesystem("memory")
        self.key = f"/zip-{uuid.uuid4().hex}/dags.zip"
        self.members = {}
        self.url = f"zip+memory://{self.key}"
        self.missing_url = f"zip+memory:///zip-{uuid.uuid4().hex}/missing.zip"
        self.entry = {}

    def push(self) -> None:
        self.fs.pipe_file(self.key, zip_bytes(self.members))


def workspace(tmp_path: Path, url: str, **fields: Any) -> Workspace:
    return one_repository(url, tmp_path, repo_id="z", **fields)


# -- a real HTTP server with Range support --------------------------------------------------


class RangeServer:
    """Serves files from ``root`` on 127.0.0.1, honouring ``Range: bytes=a-b`` (as object
    stores do) and logging every request with the bytes it sent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[tuple[str, str, int]] = []  # (method, path, body bytes sent)
        self.auth: list[str] = []  # Authorization headers seen
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _file(self) -> Path | None:
                target = server.root / self.path.lstrip("/").split("?")[0]
                return target if target.is_file() else None

            def do_HEAD(self) -> None:
                target = self._file()
                if target is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path.startswith("/noranges/"):
                    self.send_header("Accept-Ranges", "none")
                else:
                    self.send_header("Content-Length", str(target.stat().st_size))
                    self.send_header("Accept-Ranges", "bytes")
                server.record("HEAD", self.path, 0, self.headers.get("Authorization"))
                self.end_headers()

            def do_GET(self) -> None:
                target = self._file()
                if target is None:
                    self.send_error(404)
                    return
                data = target.read_bytes()
                if self.path.startswith("/noranges/"):  # a server that only streams
                    server.record("GET", self.path, len(data))
                    self.send_response(200)
                    self.send_header("Accept-Ranges", "none")
                    self.end_headers()
                    self.wfile.write(data)
                    return
                match = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range", ""))
                if match:
                    first, last = match.groups()
                    if first == "":
                        start, end = max(0, len(data) - int(last)), len(data)
                    else:
                        start = int(first)
                        end = min(len(data), int(last) + 1) if last else len(data)
                    body = data[start:end]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                else:
                    body = data
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                # logged before sending: the client may go on before this thread does
                server.record("GET", self.path, len(body), self.headers.get("Authorization"))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def record(self, method: str, path: str, nbytes: int, auth: str | None = None) -> None:
        with self._lock:
            if auth:
                self.auth.append(auth)
            self.log.append((method, path, nbytes))

    def sent(self, path: str | None = None) -> int:
        with self._lock:
            return sum(n for _, p, n in self.log if path is None or p == path)

    def requests(self, path: str) -> list[str]:
        with self._lock:
            return [m for m, p, _ in self.log if p == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
