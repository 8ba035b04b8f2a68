"""A small static HTTP server for the HTTP backend's tests (threaded, standard library only).

It serves a folder the way docs/backends/http.md asks an HTTP repository to be served:

- a folder URL (ending in ``/``) answers with an HTML index linking its files and subfolders;
  each file link carries ``data-size``, ``data-etag`` and ``data-last-modified`` (switch off
  with ``index_metadata=False`` to see the HEAD-per-file fallback);
- a file answers with ``ETag`` (a hash of its bytes), ``Last-Modified`` and ``Content-Length``,
  to GET and HEAD, and with 304 to a matching ``If-None-Match``;
- optional basic auth (``user``/``password``) or a bearer ``token``.

Tests inject faults: ``fail_next`` requests answer ``fail_status``; ``delay`` seconds pass
before each file answer; ``stop()`` / ``start()`` restart it on the same port. Every request
is recorded in ``requests`` as ``(method, path, status)``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.servers.procs import free_port


class StaticServer:
    def __init__(self, root: Path, *, user: str | None = None, password: str | None = None,
                 token: str | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.user, self.password, self.token = user, password, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index_metadata = True
        self.validators = True  # send ETag / Last-Modified at all
        self.extra_links: dict[str, list[str]] = {}  # folder URL path -> raw <a> tags
        self.fail_next = 0
        self.fail_status = 500
        self.delay = 0.0
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"server_state": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop like a crashed server: no new connections, and open keep-alive ones cut."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:
            open_connections, self._connections = self._connections, set()
        for conn in open_connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)

    def reset_faults(self) -> None:
        self.fail_next, self.fail_status, self.delay = 0, 500, 0.0

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def take_fault(self) -> int | None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.fail_status
        return None

    # -- content --------------------------------------------------------------------------

    def write(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink()


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:24] + '"'


class _Handler(BaseHTTPRequestHandler):
    server_state: StaticServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server_state.track(self.connection, True)

    def finish(self) -> None:
        self.server_state.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        return None  # keep test output quiet; requests are recorded instead

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _send(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
        self.server_state.record(self.command, self.path, status)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and status != 304:
            self.wfile.write(body)

    def _authorized(self) -> bool:
        state = self.server_state
        given = self.headers.get("Authorization", "")
        if state.user is not None:
            pair = f"{state.user}:{state.password or ''}".encode()
            return given == "Basic " + base64.b64encode(pair).decode()
        if state.token is not None:
            return given == f"Bearer {state.token}"
        return True

    def _serve(self, body: bool) -> None:
        state = self.server_state
        if not self._authorized():
            self._send(401, {"WWW-Authenticate": 'Basic realm="dags"'}, b"unauthorized", body)
            return
        fault = state.take_fault()
        if fault is not None:
            self._send(fault, {}, b"injected failure", body)
            return
        path = unquote(urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        if ".." in parts:
            self._send(400, {}, b"bad path", body)
            return
        target = state.root.joinpath(*parts)
        if target.is_dir():
            if not path.endswith("/"):
                self._send(301, {"Location": path + "/"}, b"", body)
                return
            self._index(target, path, body)
        elif target.is_file():
            if state.delay:
                time.sleep(state.delay)
            data = target.read_bytes()
            headers = {"Content-Type": "application/octet-stream"}
            if state.validators:
                headers["ETag"] = _etag(data)
                headers["Last-Modified"] = formatdate(target.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == headers["ETag"]:
                    self._send(304, headers, b"", body)
                    return
            headers["Content-Length"] = str(len(data))
            self._send(200, headers, data, body)
        else:
            self._send(404, {}, b"not found", body)

    def _index(self, folder: Path, path: str, body: bool) -> None:
        state = self.server_state
        rows = ['<a href="../">Parent directory</a>', '<a href="?C=M;O=D">sort by date</a>']
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            name = quote(entry.name)
            if entry.is_dir():
                rows.append(f'<a href="{name}/">{html.escape(entry.name)}/</a>')
                continue
            attrs = ""
            if state.index_metadata and state.validators:
                data = entry.read_bytes()
                modified = formatdate(entry.stat().st_mtime, usegmt=True)
                attrs = (f' data-size="{len(data)}" data-etag="{html.escape(_etag(data))}"'
                         f' data-last-modified="{modified}"')
            rows.append(f'<a href="{name}"{attrs}>{html.escape(entry.name)}</a>')
        rows.extend(state.extra_links.get(path, []))
        page = ("<!doctype html><html><body><h1>Index of " + html.escape(path) + "</h1>\n"
                + "<br>\n".join(rows) + "\n</body></html>\n").encode()
        headers = {"Content-Type": "text/html; charset=utf-8", "ETag": _etag(page)}
        if self.headers.get("If-None-Match") == headers["ETag"]:
            self._send(304, headers, b"", body)
            return
        self._send(200, headers, page, body)


USER = "dagreader"
PASSWORD = "http-Secret-Pass-31f4"  # distinctive, so tests can grep for leaks


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticServer]:
    """A basic-auth server over a session-wide folder; tests use their own subfolders."""
    server = StaticServer(tmp_path_factory.mktemp("http-root"), user=USER, password=PASSWORD)
    server.start()
    yield server
    server.stop()
