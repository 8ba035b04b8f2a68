"""Starting and stopping the test servers: free ports on 127.0.0.1, readiness, clean stops."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class ServerProcess:
    """One server process on a fixed port, restartable on the same port (for fault tests).
    Its stdout and stderr go to ``log``, appended across restarts."""

    def __init__(self, argv: Sequence[str], port: int, log: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.port = port
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env)
        wait_for_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block, restoring what was there before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class StopAfterFirstFile:
    """A sync observer that stops a server once the first file is downloaded: a server
    going away in the middle of a sync."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.done = 0

    def started(self, repo_id: str, files: int, nbytes: int) -> None:
        return None

    def file_done(self, repo_id: str, remote_file: object) -> None:
        self.done += 1
        if self.done == 1:
            self.stop()

    def finished(self, result: object) -> None:
        return None
