"""Real git servers for the git backend's tests, on 127.0.0.1 and free ports.

- :class:`GitDaemon`: ``git daemon`` serving git:// (its log counts requests);
- :class:`GitHttpServer`: smart HTTP through ``git http-backend`` (CGI) behind a threaded
  server that decodes chunked request bodies and checks basic auth; it can also break a
  response half-way or corrupt a pack, to test faults;
- :class:`GitRemote`: a bare repository under a server root plus a working clone; writes are
  buffered in the clone and ``push()`` commits and pushes, as the conformance suite wants.

Served repositories allow fetching any commit by id (``uploadpack.allowAnySHA1InWant``), as
hosted services do for protocol v2; :meth:`GitRemote.create` can leave that out.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.servers.procs import free_port, wait_for_port

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "dagfetch tests",
    "GIT_AUTHOR_EMAIL": "tests@dagfetch.invalid",
    "GIT_COMMITTER_NAME": "dagfetch tests",
    "GIT_COMMITTER_EMAIL": "tests@dagfetch.invalid",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run git with a clean configuration; return stdout, raise with stderr on failure."""
    proc = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env={**os.environ, **GIT_ENV},
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


# -- repositories ------------------------------------------------------------------------------


class GitRemote:
    """One served repository and a working clone that buffers writes until ``push``."""

    unsafe_names = False
    symlinks = True

    def __init__(self, bare: Path, work: Path, url: str, entry: dict[str, Any] | None = None,
                 missing_url: str | None = None) -> None:
        self.bare = bare
        self.work = work
        self.url = url
        self.entry: dict[str, Any] = entry or {}
        self.missing_url = missing_url
        self.branch = "main"

    @classmethod
    def create(cls, root: Path, work_root: Path, url_for: Any, *, any_sha: bool = True,
               entry: dict[str, Any] | None = None) -> GitRemote:
        name = f"r-{uuid.uuid4().hex[:12]}.git"
        bare = root / name
        git("init", "-q", "--bare", "-b", "main", bare)
        if any_sha:
            git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
        git("config", "uploadpack.allowReachableSHA1InWant", str(any_sha).lower(), cwd=bare)
        work = work_root / name.replace(".git", "-work")
        git("init", "-q", "-b", "main", work)
        git("remote", "add", "origin", bare, cwd=work)
        return cls(bare, work, url_for(name), entry, url_for(f"missing-{name}"))

    # the Remote protocol
    def write(self, path: str, data: bytes) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_bytes(data)

    def delete(self, path: str) -> None:
        (self.work / path).unlink()

    def symlink(self, path: str, target: str) -> None:
        link = self.work / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def push(self, message: str = "push") -> str:
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)
        return self.head()

    # helpers for the git-specific tests
    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)

    def force_push_rewrite(self, files: dict[str, bytes]) -> str:
        """Replace the branch by a new root commit holding ``files`` (history rewritten)."""
        git("checkout", "-q", "--orphan", f"rewrite-{uuid.uuid4().hex[:6]}", cwd=self.work)
        git("rm", "-q", "-rf", "--cached", ".", cwd=self.work)
        for child in self.work.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for path, data in files.items():
            self.write(path, data)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", "rewritten", cwd=self.work)
        git("push", "-q", "--force", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)
        return self.head()

    def push_branch(self, name: str) -> None:
        git("push", "-q", "origin", f"HEAD:refs/heads/{name}", cwd=self.work)

    def delete_branch(self, name: str) -> None:
        git("push", "-q", "origin", f":refs/heads/{name}", cwd=self.work)

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            git("tag", "-a", "-m", name, name, cwd=self.work)
        else:
            git("tag", name, cwd=self.work)
        git("push", "-q", "origin", f"refs/tags/{name}", cwd=self.work)


# -- git daemon ----------------------------------------------------------------------------------


class GitDaemon:
    """``git daemon`` serving every repository under ``root`` on git://127.0.0.1:PORT/."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.log_path = log_path
        self.port = free_port()
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["git", "daemon", f"--base-path={root}", "--export-all", "--reuseaddr",
             "--listen=127.0.0.1", f"--port={self.port}", "--verbose", "--informative-errors",
             "--log-destination=stderr", str(root)],
            stdout=subprocess.DEVNULL, stderr=self._log, env={**os.environ, **GIT_ENV},
        )
        wait_for_port(self.port, timeout=10.0)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def requests(self, name: str) -> int:
        """How many upload-pack requests (ref lookups and fetches) reached ``name``."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text.count(f"Request upload-pack for '/{name}'")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# -- smart HTTP ------------------------------------------------------------------------------------


def _corrupt_pack(body: bytes) -> bytes:
    """Flip one byte inside the pack data of an upload-pack response, keeping the pkt-line
    framing intact, so the client receives a well-framed but damaged pack."""
    data = bytearray(body)
    pos = 0
    seen_pack = False
    while pos + 4 <= len(data):
        try:
            length = int(data[pos:pos + 4], 16)
        except ValueError:
            break
        if length < 4:
            pos += 4
            continue
        payload_start, end = pos + 5, pos + length
        if data[pos + 4:pos + 5] == b"\x01":
            if not seen_pack and data[payload_start:payload_start + 4] == b"PACK":
                seen_pack = True
                if length - 5 > 40:
                    data[payload_start + (length - 5) // 2] ^= 0xFF
                    return bytes(data)
            elif seen_pack and length - 5 > 8:
                data[payload_start + (length - 5) // 2] ^= 0xFF
                return bytes(data)
        pos = end
    raise AssertionError("no pack data found in the response to corrupt")


class GitHttpServer:
    """Smart HTTP via ``git http-backend`` for every repository under ``root``.

    ``credentials`` (user, password) turns on basic auth. ``requests`` records
    (method, path?query, authorized) per request. Faults, for the next matching response:
    ``break_after`` (bytes sent before the connection is dropped) and ``corrupt_pack``.
    """

    def __init__(self, root: Path, credentials: tuple[str, str] | None = None) -> None:
        self.root = root
        self.credentials = credentials
        self.requests: list[tuple[str, str, bool]] = []
        self.break_after: int | None = None
        self.stall_after: int | None = None  # like break_after, but hang until released
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.corrupt_pack = False
        self.headers_seen: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"git+http://127.0.0.1:{self.port}/{name}"

    def requests_for(self, name: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, p) for m, p, _ in self.requests if p.startswith(f"/{name}/")]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- request handling --------------------------------------------------------------------

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.credentials is None:
            return True
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == self.credentials

    @staticmethod
    def _body(handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = handler.rfile.readline()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        body = self._body(handler)
        authorized = self._authorized(handler)
        with self._lock:
            self.requests.append((handler.command, handler.path, authorized))
            self.headers_seen.append(str(handler.headers))
        if not authorized:
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="git"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        env = {
            **os.environ, **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": self.credentials[0] if self.credentials else "",
        }
        if handler.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
        if handler.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env,
                              capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _ and b"\n\n" in proc.stdout:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        is_pack = handler.command == "POST" and parts.path.endswith("/git-upload-pack")
        if is_pack and self.corrupt_pack and b"PACK" in payload:
            self.corrupt_pack = False
            payload = _corrupt_pack(payload)
        handler.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        stall = self.stall_after if is_pack and b"PACK" in payload else None
        cut = self.break_after if is_pack and b"PACK" in payload else None
        if stall is not None:
            # the server stalls half-way through the pack (a client may get killed now)
            self.stall_after = None
            handler.end_headers()
            handler.wfile.write(payload[:stall])
            handler.wfile.flush()
            self.stalled.set()
            self.release.wait(30)
            handler.close_connection = True
            return
        if cut is not None:
            # the server dies half-way through the pack: send part of it and hang up
            self.break_after = None
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.end_headers()
        handler.wfile.write(payload)


# -- pytest fixtures (import them into a test module: one set of servers per session) ---------

HTTP_USER = "dagfetch-ci"
HTTP_PASSWORD = f"pw-{uuid.uuid4().hex}"  # random per run, so grepping for it means something


class GitServers:
    """Everything the git tests serve from: one folder of bare repositories behind a git
    daemon, an authenticated smart-HTTP server and an open one."""

    def __init__(self, base: Path) -> None:
        self.root = base / "served"
        self.root.mkdir()
        self.daemon = GitDaemon(self.root, base / "daemon.log")
        self.http = GitHttpServer(self.root, (HTTP_USER, HTTP_PASSWORD))
        self.http_open = GitHttpServer(self.root)
        self._stopped = False

    def file_url(self, name: str) -> str:
        return f"git+file://{self.root / name}"

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.daemon.stop()
            self.http.stop()
            self.http_open.stop()


_SERVERS: GitServers | None = None


@pytest.fixture(scope="session")
def git_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServers]:
    global _SERVERS
    if _SERVERS is None:
        _SERVERS = GitServers(tmp_path_factory.mktemp("git"))
    yield _SERVERS
    _SERVERS.stop()
