"""The syncing process's side of extraction: worker processes, one file each at a time,
kept warm between extractions by a :class:`WorkerPool`.

Each worker (:mod:`dagfetch.graphs.worker.zygote`) is a clean ``python -m`` interpreter in a
session of its own, with a scrubbed environment, stdout and stdin away from the caller's, and a
pipe of its own for results. Files go to whichever worker is free; a worker that breaks the
protocol, dies or overruns the time limit costs only its current file (an import error) and is
replaced. At the end every worker's whole process group is killed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from dagfetch.graphs.errors import ExtractionError
from dagfetch.graphs.worker import protocol
from dagfetch.graphs.worker.cgroup import PidsCgroup
from dagfetch.graphs.worker.environment import worker_environment
from dagfetch.graphs.worker.settings import WorkerSettings, default_workers
from dagfetch.redact import get_logger

log = get_logger(__name__)

WORKER_START_TIMEOUT = 120.0
#: the parent's own deadline is the worker's plus this (the worker enforces the limit first)
PARENT_GRACE = 5.0

class _Worker:
    """One worker process and the file it is parsing."""

    def __init__(self, config: dict[str, Any], env: dict[str, str], cwd: str) -> None:
        # the worker, the child parsing a file, and what the file may start
        self.cgroup = PidsCgroup.create(int(config["max_processes"]) + 2)
        config = {**config, "cgroup": str(self.cgroup.path) if self.cgroup else None}
        read_fd, write_fd = os.pipe()
        # the worker's own stderr (its children's goes elsewhere): read when it fails
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 closed in stop()
        command = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []),
                   "-m", "dagfetch.graphs.worker.zygote", str(write_fd), str(os.getpid())]
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.stderr,
                pass_fds=(write_fd,), env=env, cwd=cwd, start_new_session=True)
        except BaseException:
            os.close(read_fd)
            self.stderr.close()
            if self.cgroup is not None:
                self.cgroup.destroy()
            raise
        finally:
            os.close(write_fd)
        self.fd = read_fd
        self.reader = protocol.FrameReader()
        self.ready = False
        self.duplicate_message: str | None = None
        self.current: str | None = None
        self.deadline = time.monotonic() + WORKER_START_TIMEOUT
        self.command(config)

    def command(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: its pipe's end of file tells the loop

    def stderr_tail(self, size: int = 4096) -> str:
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - size))
        return self.stderr.read().decode("utf-8", "replace")

    def stop(self, *, graceful: bool) -> None:
        """End the worker and everything in its process group."""
        if graceful and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # end of file: it kills its children and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        self.proc.wait()
        if self.cgroup is not None:
            self.cgroup.destroy()  # what left the process group too
        os.close(self.fd)
        self.stderr.close()


class WorkerPool:
    """Extraction workers kept warm between extractions.

    Workers start on first need (at most ``settings.workers``, default one per core, and never
    more than there are files) and serve every later :meth:`parse`, of any version, until
    :meth:`close`: a long-lived process (``sync --watch``, ``serve --watch``, the library API)
    pays the workers' start and their ``preload`` (Airflow: seconds) once, not once per sync.
    Reuse loosens no isolation: a worker never runs DAG code itself (each file runs in a fresh
    fork of it), so a warm worker is the same clean interpreter as a new one. The pool is
    closed when garbage collected and at interpreter exit too.
    """

    def __init__(self, refs: Sequence[str], settings: WorkerSettings,
                 environ: Mapping[str, str] | None = None) -> None:
        self.refs = list(refs)
        self.settings = settings
        self.env = worker_environment(os.environ if environ is None else environ,
                                      settings.environment)
        self.size = settings.workers or default_workers()
        self._workers: list[_Worker] = []
        self._cwd = tempfile.TemporaryDirectory(prefix="dagfetch-worker-")
        self._lock = threading.Lock()
        self._closed = False
        #: workers started so far (a test's and a benchmark's view of reuse)
        self.started = 0
        self._finalizer = weakref.finalize(self, _stop_all, self._workers, self._cwd)

    def serves(self, refs: Sequence[str], settings: WorkerSettings,
               environ: Mapping[str, str] | None = None) -> bool:
        """Whether this pool's workers are the ones these arguments would start."""
        env = worker_environment(os.environ if environ is None else environ,
                                 settings.environment)
        return (not self._closed and list(refs) == self.refs and settings == self.settings
                and env == self.env)

    @property
    def duplicate_message(self) -> str | None:
        """How the extractors word a ``dag_id`` defined in two files (known once a worker
        started; None: dagfetch's own words)."""
        return next((w.duplicate_message for w in self._workers if w.duplicate_message), None)

    @property
    def alive(self) -> int:
        """Workers running now."""
        return sum(1 for worker in self._workers if worker.proc.poll() is None)

    def config(self) -> dict[str, Any]:
        return {"extractors": self.refs, "sys_path": sys.path, "cwd": self._cwd.name,
                "preload": list(self.settings.preload),
                "file_timeout": self.settings.file_timeout,
                "max_processes": self.settings.max_processes, "user": self.settings.user}

    def _start(self) -> _Worker:
        self.started += 1
        return _Worker(self.config(), self.env, self._cwd.name)

    def parse(self, root: Path, files: Sequence[str]) -> dict[str, protocol.FileResult]:
        """Parse ``files`` of the version folder ``root``; one checked result per file."""
        with self._lock:
            if self._closed:
                raise ExtractionError("the extraction worker pool is closed")
            results: dict[str, protocol.FileResult] = {}
            pending = deque(files)
            try:
                for worker in [w for w in self._workers if w.proc.poll() is not None]:
                    worker.stop(graceful=False)  # died while idle: no file of ours is lost
                    self._workers.remove(worker)
                while len(self._workers) < min(self.size, len(pending)):
                    self._workers.append(self._start())
                if pending:
                    self._run(str(root), pending, results)
            except BaseException:
                # workers in the middle of a file are in no known state: start afresh
                _stop_all(self._workers, None, graceful=False)
                raise
            return results

    def _run(self, root: str, pending: deque[str],
             results: dict[str, protocol.FileResult]) -> None:
        settings, workers = self.settings, self._workers

        def fail(rel: str, message: str) -> None:
            results[rel] = protocol.FileResult(rel, (), message)

        selector = selectors.DefaultSelector()
        try:
            for worker in workers:
                selector.register(worker.fd, selectors.EVENT_READ, worker)
            while pending or any(w.current is not None for w in workers):
                if not workers:  # every worker broke and none was needed any more
                    break
                for worker in workers:
                    if worker.ready and worker.current is None and pending:
                        worker.current = pending.popleft()
                        worker.deadline = time.monotonic() + settings.file_timeout + PARENT_GRACE
                        worker.command({"root": root, "file": worker.current})
                first = min(w.deadline for w in workers)
                timeout = None if first == math.inf else max(0.0, first - time.monotonic())
                broken = [key.data for key, _ in selector.select(timeout)
                          if not _receive(results, key.data, fail)]
                now = time.monotonic()
                for worker in workers:
                    if worker.deadline <= now and worker not in broken:
                        if worker.current is None:
                            raise ExtractionError("the DAG parser process did not start within "
                                                  f"{WORKER_START_TIMEOUT:.0f}s")
                        fail(worker.current, f"{protocol.TIMED_OUT}: importing {worker.current} "
                             f"took longer than {settings.file_timeout:g}s (the file was "
                             "abandoned)")
                        worker.current = None
                        broken.append(worker)
                for worker in broken:
                    selector.unregister(worker.fd)
                    worker.stop(graceful=False)
                    workers.remove(worker)
                    if len(workers) < len(pending):  # no fresh worker just to stop it again
                        workers.append(replacement := self._start())
                        selector.register(replacement.fd, selectors.EVENT_READ, replacement)
        finally:
            selector.close()

    def close(self) -> None:
        """Stop every worker (and whatever is left of their children)."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop_all(workers: list[_Worker], cwd: tempfile.TemporaryDirectory[str] | None, *,
              graceful: bool = True) -> None:
    while workers:
        workers.pop().stop(graceful=graceful)
    if cwd is not None:
        cwd.cleanup()


def _receive(results: dict[str, protocol.FileResult], worker: _Worker,
             fail: Callable[[str, str], None]) -> bool:
    """Read what ``worker`` sent; False when it must be replaced (died, broke the protocol)."""
    try:
        data = os.read(worker.fd, 65536)
    except OSError:
        data = b""
    current = worker.current
    if not data:  # end of file: the worker is gone
        code = worker.proc.wait()
        if current is None and not worker.ready:
            raise ExtractionError(f"the DAG parser process exited with code {code} before "
                                  f"parsing anything:\n{worker.stderr_tail()}")
        if current is not None:
            fail(current, f"{protocol.DIED} died (exit code {code}) while importing "
                     f"{current}")
        worker.current = None
        return False
    try:
        for message in worker.reader.feed(data):
            _handle(results, worker, message)
    except protocol.ProtocolError as exc:
        if current is not None:
            fail(current, f"{protocol.INVALID}: {exc}")
        elif not worker.ready:
            raise ExtractionError(f"the DAG parser process failed to start: {exc}") from None
        worker.current = None
        return False
    return True


def _handle(results: dict[str, protocol.FileResult], worker: _Worker,
            message: dict[str, Any]) -> None:
    if not worker.ready:
        if message["kind"] == "fatal":
            raise ExtractionError(f"graph extractors failed to load:\n{message.get('error')}")
        if message["kind"] != "ready":
            raise protocol.ProtocolError(f"expected ready, got {message['kind'][:40]!r}")
        worker.duplicate_message = protocol.ready_duplicate_message(message)
        worker.ready = True
        worker.deadline = math.inf
        return
    if worker.current is None:
        raise protocol.ProtocolError("a message while no file was being parsed")
    results[worker.current] = protocol.parse_result(message, worker.current)
    worker.current = None
    worker.deadline = math.inf

