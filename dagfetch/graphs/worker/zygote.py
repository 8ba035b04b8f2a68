"""The extraction worker: a warm interpreter that forks a fresh child per DAG file.

Started by :mod:`dagfetch.graphs.worker.pool` as ``python -m dagfetch.graphs.worker.zygote
FD PARENT_PID`` (a clean interpreter: the caller's ``__main__`` is never imported again), in a
session of its own, with a scrubbed environment, stdout on ``/dev/null``. It reads commands as
JSON lines on stdin and writes :mod:`~dagfetch.graphs.worker.protocol` messages on ``FD``:

1. the first line configures it (extractor references, ``sys.path``, time limit); it loads
   the extractors, imports what they ``preload`` (Airflow, once), freezes what it holds out of
   the garbage collector's reach (so a child's collections do not copy the warm interpreter's
   memory page by page), and says ``ready``;
2. each further line names one DAG file and its version folder. Before forking, the worker
   reads the file's ``import`` statements (with :mod:`ast`: it never runs the file) and
   imports those of the *installed* packages that ``preload`` names (``airflow.providers.
   standard.operators.bash`` under ``airflow``), once per worker, as a DAG processor has them
   imported after its first file; a module of the version folder is never imported here.
   Then a forked child imports the file and runs the extractors,
   so nothing a file changes (``sys.path``, builtins, stdlib modules, registries) reaches the
   next file; the child's result comes back over a pipe of its own, is checked, and is
   forwarded; whatever the child started is killed before the next file.

The worker itself never runs DAG code; only its children do. So it stays as clean as it
started, and one worker serves any number of files and versions: a long-lived process
(``sync --watch``, the library API) keeps its workers warm between syncs
(:class:`~dagfetch.graphs.worker.pool.WorkerPool`).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from dagfetch.graphs.worker import limits, protocol

STDERR_TAIL_BYTES = 4096
_READ = 65536


class _Zygote:
    def __init__(self, results_fd: int, config: dict[str, Any]) -> None:
        self.results_fd = results_fd
        self.timeout: float = float(config["file_timeout"])
        self.max_processes: int = int(config["max_processes"])
        self.user: str | None = config.get("user")
        self.extractors: list[Any] = []
        #: version folder -> its top-level module names (a version's folder never changes)
        self.top_level: dict[str, frozenset[str]] = {}
        #: packages whose modules DAG files import are imported here first (see warm_up)
        self.packages: frozenset[str] = frozenset()
        self.tried: set[str] = set()

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        while data:
            data = data[os.write(self.results_fd, data):]

    def load(self, refs: list[str], preload: list[str]) -> None:
        from dagfetch.graphs.extract import load_extractor

        self.extractors = [load_extractor(ref) for ref in refs]
        # the first extractor's wording of a dag_id that a second file defines again
        self.duplicate_message = next(
            (text for text in (getattr(e, "duplicate_message", None) for e in self.extractors)
             if isinstance(text, str)), None)
        for extractor in self.extractors:
            for name, value in dict(getattr(extractor, "environment", None) or {}).items():
                os.environ.setdefault(str(name), str(value))  # the configuration wins
        for extractor in self.extractors:
            preload = [*preload, *(getattr(extractor, "preload", None) or ())]
        for name in preload:
            importlib.import_module(name)
        self.packages = frozenset(name.partition(".")[0] for name in preload)
        for extractor in self.extractors:
            # what the framework imports lazily on first use (Airflow's timetables when the
            # first DAG is built): done once here, not once per child
            warm_up = getattr(extractor, "warm_up", None)
            if callable(warm_up):
                warm_up()
        limits.prepare()  # what each child needs, looked up once (libc, the fd limit)
        # everything loaded so far lives as long as the worker: the children's collections
        # never walk it (walking it would copy the whole heap into every child)
        gc.collect()
        gc.freeze()

    def names_of(self, root: str) -> frozenset[str]:
        """``root``'s top-level module names, listed once per version, not once per file or
        per module (see :mod:`dagfetch.importing`)."""
        from dagfetch.importing import top_level_names

        names = self.top_level.get(root)
        if names is None:
            if len(self.top_level) >= 16:  # versions come and go in a long-lived worker
                self.top_level.clear()
            names = self.top_level[root] = frozenset(top_level_names(Path(root)))
        return names

    def warm_up(self, path: Path, top_level: frozenset[str]) -> None:
        """Import the modules of preloaded packages that ``path`` imports, unless the version
        folder provides that name itself. What fails to import here is left to the child
        (the file's own import error, with the file's traceback)."""
        fresh = False
        for name in sorted(imported_names(path)):
            top = name.partition(".")[0]
            if top not in self.packages or top in top_level or name in self.tried \
                    or name in sys.modules:
                continue
            self.tried.add(name)
            with contextlib.suppress(Exception, SystemExit):
                importlib.import_module(name)
                fresh = True
        if fresh:
            gc.freeze()  # as after load(): the children never collect what came with it

    # -- one file ----------------------------------------------------------------------------

    def parse(self, root: str, rel: str) -> dict[str, Any]:
        top_level = self.names_of(root)
        if self.packages:
            self.warm_up(Path(root, rel), top_level)
        result_r, result_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            os.close(stderr_r)
            self._child(root, rel, top_level, result_w, stderr_w)
        os.close(result_w)
        os.close(stderr_w)
        try:
            return self._watch(rel, pid, result_r, stderr_r)
        finally:
            os.close(result_r)
            os.close(stderr_r)
            limits.kill_descendants()

    def _watch(self, rel: str, pid: int, result_r: int, stderr_r: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        exited = _pidfd(pid)
        received = bytearray()
        tail = bytearray()
        status: int | None = None
        problem: str | None = None
        streams = {result_r, stderr_r}
        while status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(pid)
                return _error(rel, f"{protocol.TIMED_OUT}: importing {rel} took longer than "
                              f"{self.timeout:g}s (the file was abandoned)", tail)
            wait = [*streams, 0] + ([exited] if exited is not None else [])
            ready, _, _ = select.select(wait, [], [], min(remaining, 0.05 if exited is None
                                                          else remaining))
            for fd in ready:
                if fd == 0:
                    _shutdown()  # the parent is gone (end of file) or broke the protocol
                if fd in streams:
                    data = os.read(fd, _READ)
                    if not data:
                        streams.discard(fd)
                    elif fd == stderr_r:
                        tail = (tail + data)[-STDERR_TAIL_BYTES:]
                    elif len(received) + len(data) > protocol.MAX_MESSAGE_BYTES + 4:
                        problem = "a message over the size limit"
                        _kill(pid)
                    else:
                        received += data
            finished, code = os.waitpid(pid, os.WNOHANG)
            if finished:
                status = code
        if exited is not None:
            os.close(exited)
        if problem is None:
            received += _drain(result_r, protocol.MAX_MESSAGE_BYTES + 4 - len(received))
        tail = (tail + _drain(stderr_r, STDERR_TAIL_BYTES))[-STDERR_TAIL_BYTES:]
        if problem is not None:
            return _error(rel, f"{protocol.INVALID}: {problem}", tail)
        if not received:
            return _error(rel, f"{protocol.DIED} {_describe(status)} while importing {rel}",
                          tail)
        try:
            reader = protocol.FrameReader()
            messages = reader.feed(bytes(received))
            if len(messages) != 1 or reader.pending:
                raise protocol.ProtocolError("not exactly one message")
            protocol.parse_result(messages[0], rel)
        except protocol.ProtocolError as exc:
            return _error(rel, f"{protocol.INVALID}: {exc}", tail)
        message: dict[str, Any] = messages[0]
        return message

    def _child(self, root: str, rel: str, top_level: frozenset[str], result_w: int,
               stderr_w: int) -> NoReturn:
        me = os.getpid()
        message: dict[str, Any] | None = None
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            limits.die_with_parent(signal.SIGKILL, os.getppid())
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(stderr_w, 2)
            os.dup2(result_w, 3)
            # the parent's pipes (commands, results) are out of the DAG file's reach
            os.closerange(4, limits.max_fd())
            if self.user is not None:
                limits.become_user(self.user)
            limits.limit_time(self.timeout)
            limits.limit_processes(self.max_processes)
            message = self._run(root, rel, top_level)
        except BaseException:  # the file's own failures are caught in _run: this is ours
            message = {"kind": "result", "file": rel, "graphs": [],
                       "error": traceback.format_exc()}
        finally:
            # a DAG file that called os.fork() has a copy of this code running: only the
            # child the worker forked answers
            if message is not None and os.getpid() == me:
                with contextlib.suppress(BaseException):
                    data = protocol.encode(message)
                    while data:
                        data = data[os.write(3, data):]
            os._exit(0)

    def _run(self, root: str, rel: str, top_level: frozenset[str]) -> dict[str, Any]:
        from dagfetch.importing import import_version

        # the child ends after this file: no need to put sys.modules back
        imported = import_version(root, [rel], top_level=top_level, throwaway=True)
        if rel in imported.errors:
            return {"kind": "result", "file": rel, "graphs": [], "error": imported.errors[rel]}
        graphs: list[dict[str, Any]] = []
        try:
            for extractor in self.extractors:
                graphs.extend(g.to_json() for g in extractor(imported.modules[rel]))
            message = {"kind": "result", "file": rel, "graphs": graphs, "error": None}
            protocol.encode(message)  # over the size limit: this file's error
        except Exception:
            return {"kind": "result", "file": rel, "graphs": [], "error": traceback.format_exc()}
        return message


MAX_SCANNED_BYTES = 1 << 20


def imported_names(path: Path) -> set[str]:
    """The absolute module names that a Python file's module-level ``import`` statements
    name (also inside a module-level ``if``, ``try`` or ``with``; not those run only when a
    function is called), read with :mod:`ast`, never run; nothing for a file that is too
    large or does not parse."""
    try:
        if path.stat().st_size > MAX_SCANNED_BYTES:
            return set()
        statements = list(ast.parse(path.read_bytes(), str(path)).body)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, ()))
        elif isinstance(node, ast.ExceptHandler):
            statements.extend(node.body)
    return names


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return None  # no pidfds (not Linux, or an old kernel): poll instead


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _drain(fd: int, limit: int) -> bytes:
    """What ``fd`` holds right now, without waiting for writers that are still alive."""
    os.set_blocking(fd, False)
    data = bytearray()
    with contextlib.suppress(BlockingIOError, OSError):
        while len(data) < limit:
            chunk = os.read(fd, min(_READ, limit - len(data)))
            if not chunk:
                break
            data += chunk
    return bytes(data)


def _describe(status: int | None) -> str:
    if status is None:
        return "vanished"
    if os.WIFSIGNALED(status):
        return f"died (killed by signal {os.WTERMSIG(status)})"
    return f"died (exit code {os.waitstatus_to_exitcode(status)}, no result)"


def _error(rel: str, text: str, tail: bytes | bytearray) -> dict[str, Any]:
    if tail:
        text += "\n--- the end of its stderr ---\n" + tail.decode("utf-8", "replace")
    return {"kind": "result", "file": rel, "graphs": [], "error": text}


def _read_line(buffer: bytearray) -> bytes | None:
    """The next command from the parent; None at end of file (the parent closed or died)."""
    while b"\n" not in buffer:
        chunk = os.read(0, _READ)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _shutdown(*_: object) -> NoReturn:
    limits.kill_descendants()
    os._exit(0)


def main(argv: list[str]) -> int:
    results_fd, parent_pid = int(argv[0]), int(argv[1])
    # SIGTERM, not SIGKILL: the worker kills its children first
    signal.signal(signal.SIGTERM, _shutdown)
    limits.die_with_parent(signal.SIGTERM, parent_pid)
    limits.become_subreaper()
    buffer = bytearray()
    line = _read_line(buffer)
    if line is None:
        return 0
    config = json.loads(line)
    if config.get("cgroup"):
        # before anything can fork: every process of this worker is counted and killable
        Path(config["cgroup"], "cgroup.procs").write_text(str(os.getpid()))
    sys.path[:] = config["sys_path"]
    os.chdir(config["cwd"])
    zygote = _Zygote(results_fd, config)
    try:
        zygote.load(config["extractors"], config["preload"])
    except BaseException:
        zygote.send({"kind": "fatal", "error": traceback.format_exc()})
        return 1
    zygote.send({"kind": "ready", **({"duplicate_message": zygote.duplicate_message}
                                     if zygote.duplicate_message else {})})
    while (line := _read_line(buffer)) is not None:
        command = json.loads(line)
        zygote.send(zygote.parse(command["root"], command["file"]))
    _shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
