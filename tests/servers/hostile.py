"""A hostile HTTP server (standard library only, 127.0.0.1): it serves folder index pages the
way docs/backends/http.md asks, then misbehaves per file.

Each file has a :class:`Behaviour`:

- ``honest``: its bytes, with ``Content-Length`` and an ``ETag``;
- ``lying``: the index says ``data-size=<listed_size>``, the GET streams ``stream_bytes``
  (chunked);
- ``endless``: a chunked body that never ends;
- ``stall``: headers, a few bytes, then silence until the server stops;
- ``reset``: headers promising the whole file, a part of it, then a TCP reset (the first
  ``resets_left`` GETs only, when set).

A folder named in ``loops`` answers every path below it with an index linking ``a/`` one
level deeper: a folder loop. ``sent`` counts the body bytes that left the server, so a test
can show a client stopped reading early (the server stops writing when the client hangs up).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest

from tests.servers.procs import free_port

CHUNK = b"x" * 65536


@attrs.define
class Behaviour:
    data: bytes = b""
    mode: str = "honest"  # honest | lying | endless | stall | reset
    listed_size: int | None = None  # what the index says (None: len(data))
    stream_bytes: int = 0  # lying: how much the GET sends
    resets_left: int = -1  # reset: how many GETs reset before it answers honestly (-1: all)


class HostileServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.files: dict[str, Behaviour] = {}  # "repo/a.py" -> behaviour
        self.loops: set[str] = set()  # "loop" -> /loop/a/a/a/... never ends
        self.sent = 0
        self.gets: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"state": self})
        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.files.clear()
            self.loops.clear()
            self.sent = 0
            self.gets.clear()

    def count(self, nbytes: int) -> None:
        with self._lock:
            self.sent += nbytes


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:24] + '"'


class _Handler(BaseHTTPRequestHandler):
    state: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        state = self.state
        path = self.path.split("?", 1)[0].lstrip("/")
        with state._lock:
            state.gets.append(path)
        loop = next((name for name in state.loops if path.startswith(name + "/")), None)
        if loop is not None:
            self._page('<a href="a/">a/</a> <a href="f.py" data-size="1" data-etag="e">f</a>')
            return
        if path.endswith("/") or path == "":
            folders = {name[len(path):].split("/", 1)[0] for name in state.files
                       if name.startswith(path) and "/" in name[len(path):]}
            links = [f'<a href="{folder}/">{folder}/</a>' for folder in sorted(folders)]
            for name, behaviour in sorted(state.files.items()):
                if not name.startswith(path) or "/" in name[len(path):]:
                    continue
                rel = name[len(path):]
                size = behaviour.listed_size if behaviour.listed_size is not None \
                    else len(behaviour.data)
                sized = f' data-size="{size}"' if size >= 0 else ""  # -1: no size given
                links.append(f'<a href="{rel}"{sized} '
                             f'data-etag=\'{_etag(behaviour.data)}\'>{rel}</a>')
            links += [f'<a href="{name[len(path):]}/">{name[len(path):]}/</a>'
                      for name in sorted(state.loops)
                      if name.startswith(path) and "/" not in name[len(path):]]
            self._page("\n".join(links))
            return
        behaviour = state.files.get(path)
        if behaviour is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        getattr(self, f"_{behaviour.mode}")(behaviour)

    def _page(self, body: str) -> None:
        data = f"<html><body>{body}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _headers(self, behaviour: Behaviour, length: int | None) -> None:
        self.send_response(200)
        self.send_header("ETag", _etag(behaviour.data))
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write(self, data: bytes, chunked: bool) -> bool:
        try:
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False  # the client hung up: stop sending
        self.state.count(len(data))
        return True

    def _honest(self, behaviour: Behaviour) -> None:
        self._headers(behaviour, len(behaviour.data))
        self._write(behaviour.data, chunked=False)

    def _lying(self, behaviour: Behaviour) -> None:
        self._headers(behaviour, None)
        left = behaviour.stream_bytes
        while left > 0 and not self.state._stop.is_set():
            piece = CHUNK[: min(left, len(CHUNK))]
            if not self._write(piece, chunked=True):
                return
            left -= len(piece)
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def _endless(self, behaviour: Behaviour) -> None:
        self._headers(behaviour, None)
        while not self.state._stop.is_set() and self._write(CHUNK, chunked=True):
            pass

    def _stall(self, behaviour: Behaviour) -> None:
        self._headers(behaviour, len(behaviour.data))
        self._write(behaviour.data[:1], chunked=False)
        # silent until the test is over (its reset() forgets this file) or the server stops
        while not self.state._stop.wait(0.2) and any(
            b is behaviour for b in list(self.state.files.values())
        ):
            pass
        self.close_connection = True

    def _reset(self, behaviour: Behaviour) -> None:
        if behaviour.resets_left == 0:
            self._honest(behaviour)
            return
        behaviour.resets_left -= 1
        self._headers(behaviour, len(behaviour.data))
        self._write(behaviour.data[: len(behaviour.data) // 2], chunked=False)
        # SO_LINGER 0: close() sends a RST instead of a FIN
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


@pytest.fixture(scope="session")
def hostile_server_session() -> Iterator[HostileServer]:
    server = HostileServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hostile_server(hostile_server_session: HostileServer) -> Iterator[HostileServer]:
    hostile_server_session.reset()
    yield hostile_server_session
    hostile_server_session.reset()
