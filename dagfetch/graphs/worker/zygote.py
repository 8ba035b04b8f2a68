"""The extraction worker: a warm interpreter that forks a fresh child per DAG file.

Started by :mod:`dagfetch.graphs.worker.pool` as ``python -m dagfetch.graphs.worker.zygote
FD PARENT_PID`` (a clean interpreter: the caller's ``__main__`` is never imported again), in a
session of its own, with a scrubbed environment, stdout on ``/dev/null``. It reads commands as
JSON lines on stdin and writes :mod:`~dagfetch.graphs.worker.protocol` messages on ``FD``:

1. the first line configures it (extractor references, ``sys.path``, time limit); it loads
   the extractors, imports what they ``preload`` (Airflow, once), freezes what it holds out of
   the garbage collector's reach (so a child's collections do not copy the warm interpreter's
   memory page by page), and says ``ready``; once it has parsed a few files, it puts its heap
   on huge pages where the kernel can (fewer page-table entries for each fork to copy:
   :mod:`~dagfetch.graphs.worker.hugepages`);
2. each further line names one DAG file and its version folder. Before forking, the worker
   reads the file's ``import`` statements (with :mod:`ast`: it never runs the file) and
   imports those of the *installed* packages that ``preload`` names (``airflow.providers.
   standard.operators.bash`` under ``airflow``), once per worker, as a DAG processor has them
   imported after its first file; a module of the version folder is never imported here.
   Then a forked child imports the file and runs the extractors,
   so nothing a file changes (``sys.path``, builtins, stdlib modules, registries) reaches the
   next file; the child's result comes back over a pipe of its own, is checked, and is
   forwarded; whatever the child started is killed before the next file. With
   ``files_per_child`` above 1 (opt-in) one child parses up to that many files of one
   version in turn (:mod:`~dagfetch.graphs.worker.child`): a file that times out, dies or
   breaks the protocol is killed with its child and gets the same error as alone, and the
   next file gets a fresh child; files of another version never share a child.

The worker itself never runs DAG code; only its children do. So it stays as clean as it
started, and one worker serves any number of files and versions: a long-lived process
(``sync --watch``, the library API) keeps its workers warm between syncs
(:class:`~dagfetch.graphs.worker.pool.WorkerPool`).
"""

from __future__ import annotations

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

from dagfetch.graphs.worker import hugepages, limits, protocol
from dagfetch.graphs.worker.child import FileParser, VersionNames, read_line
from dagfetch.graphs.worker.imports import imported_names

STDERR_TAIL_BYTES = 4096
_READ = 65536
#: the heap goes on huge pages before the fork of this file: collapsing costs 15 to 45 ms
#: once and saves about 3 ms a fork, so a worker that parses a few files never pays for it
COLLAPSE_AT_FILE = 16


class _Child:
    """A forked child, its pipes and (a child of several files) how many it was given."""

    def __init__(self, pid: int, result_r: int, stderr_r: int, root: str,
                 commands_w: int | None) -> None:
        self.pid, self.result_r, self.stderr_r, self.root = pid, result_r, stderr_r, root
        self.commands_w = commands_w
        self.exited = _pidfd(pid)
        self.status: int | None = None
        self.files = 0

    @property
    def several(self) -> bool:
        return self.commands_w is not None

    def poll(self) -> int | None:
        if self.status is None:
            finished, code = os.waitpid(self.pid, os.WNOHANG)
            if finished:
                self.status = code
        return self.status

    def ask(self, rel: str) -> bool:
        """Name the next file to a child of several files; False when it is gone."""
        assert self.commands_w is not None
        data = json.dumps({"file": rel}).encode() + b"\n"
        try:
            while data:
                data = data[os.write(self.commands_w, data):]
        except OSError:
            return False
        self.files += 1
        return True

    def kill(self) -> None:
        if self.status is None:
            _kill(self.pid)
            self.status = -1

    def close(self) -> None:
        self.kill()
        for fd in (self.result_r, self.stderr_r, self.commands_w, self.exited):
            if fd is not None:
                os.close(fd)


class _Zygote:
    def __init__(self, results_fd: int, config: dict[str, Any]) -> None:
        self.results_fd = results_fd
        self.parser = FileParser(config)
        self.timeout = self.parser.timeout
        #: version folder -> its top-level module names (a version's folder never changes)
        self.top_level: dict[str, frozenset[str]] = {}
        #: version folder -> its names for a child, and the state of sys.modules they are of
        self.names: dict[str, tuple[VersionNames, tuple[int, int]]] = {}
        #: packages whose modules DAG files import are imported here first (see warm_up)
        self.packages: frozenset[str] = frozenset()
        self.tried: set[str] = set()
        #: the child parsing several files of one version in turn (files_per_child > 1)
        self.batch: _Child | None = None
        self.files = 0  # parsed so far

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        while data:
            data = data[os.write(self.results_fd, data):]

    def load(self, refs: list[str], preload: list[str]) -> None:
        from dagfetch.graphs.extract import load_extractor

        extractors = self.parser.extractors = [load_extractor(ref) for ref in refs]
        # the first extractor's wording of a dag_id that a second file defines again
        self.duplicate_message = next(
            (text for text in (getattr(e, "duplicate_message", None) for e in extractors)
             if isinstance(text, str)), None)
        for extractor in extractors:
            for name, value in dict(getattr(extractor, "environment", None) or {}).items():
                os.environ.setdefault(str(name), str(value))  # the configuration wins
        for extractor in extractors:
            preload = [*preload, *(getattr(extractor, "preload", None) or ())]
        for name in preload:
            importlib.import_module(name)
        self.packages = frozenset(name.partition(".")[0] for name in preload)
        for extractor in extractors:
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

    def top_level_of(self, root: str) -> frozenset[str]:
        """``root``'s top-level module names, listed once per version, not once per file or
        per module (see :mod:`dagfetch.importing`)."""
        from dagfetch.importing import top_level_names

        names = self.top_level.get(root)
        if names is None:
            if len(self.top_level) >= 16:  # versions come and go in a long-lived worker
                self.top_level.clear()
                self.names.clear()
            names = self.top_level[root] = frozenset(top_level_names(Path(root)))
        return names

    def names_of(self, root: str) -> VersionNames:
        """What ``root``'s children need: the folder resolved, its top-level names and the
        loaded modules they hide, found once while ``sys.modules`` keeps its size and no
        import was tried (a failed one removes), so no child walks it (copying its pages)."""
        from dagfetch.importing import shadowed_names

        state = (len(sys.modules), len(self.tried))
        known = self.names.get(root)
        if known is None or known[1] != state:
            top_level = self.top_level_of(root)
            known = self.names[root] = (
                VersionNames(Path(root).resolve(), top_level, shadowed_names(top_level)), state)
        return known[0]

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
            if self.files >= COLLAPSE_AT_FILE:
                hugepages.collapse()  # what came with it too

    # -- one file ----------------------------------------------------------------------------

    def parse(self, root: str, rel: str) -> dict[str, Any]:
        if self.packages:
            self.warm_up(Path(root, rel), self.top_level_of(root))
        names = self.names_of(root)  # after warm_up: what it imported may be hidden too
        self.files += 1
        if self.files == COLLAPSE_AT_FILE:
            # fewer page-table entries for each fork to copy and each child's exit to unmap
            hugepages.collapse()
        if self.parser.files_per_child > 1:
            return self._parse_in_batch(root, rel, names)
        child = self._fork(root, names, rel)
        try:
            return self._watch(rel, child)[0]
        finally:
            child.close()
            limits.kill_descendants()

    def _parse_in_batch(self, root: str, rel: str, names: VersionNames) -> dict[str, Any]:
        """``rel`` parsed by the child of several files of ``root`` (started when there is
        none). A child that failed a file, that says it is no longer alone, or that parsed
        its share is ended: the next file gets a fresh one."""
        child = self.batch
        if child is not None and (child.root != root or not child.ask(rel)):
            self.end_batch()  # another version, or it died between two files: not rel's doing
            child = None
        if child is None:
            child = self.batch = self._fork(root, names, None)
            child.ask(rel)  # a child that is gone already: its death is rel's error
        message, ended = self._watch(rel, child)
        if ended or child.files >= self.parser.files_per_child:
            self.end_batch()
        return message

    def end_batch(self) -> None:
        child, self.batch = self.batch, None
        if child is not None:
            child.close()
            limits.kill_descendants()

    def _fork(self, root: str, names: VersionNames, rel: str | None) -> _Child:
        """A fresh child for ``rel`` (None: for the files named to it one by one)."""
        result_r, result_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        commands_r, commands_w = os.pipe() if rel is None else (None, None)
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            os.close(stderr_r)
            if commands_w is not None:
                os.close(commands_w)
            self.parser.run_child(rel, names, result_w, stderr_w, commands_r)
        os.close(result_w)
        os.close(stderr_w)
        if commands_r is not None:
            os.close(commands_r)
        return _Child(pid, result_r, stderr_r, root, commands_w)

    def _watch(self, rel: str, child: _Child) -> tuple[dict[str, Any], bool]:
        """``child``'s checked result for ``rel`` (any failure: the file's error), and whether
        the child is done for: it exited, failed, or (several files) says it is not alone."""
        deadline = time.monotonic() + self.timeout
        reader = protocol.FrameReader()
        messages: list[dict[str, Any]] = []
        received = 0
        tail = bytearray()
        problem: str | None = None

        def feed(data: bytes) -> str | None:
            nonlocal received
            received += len(data)
            if received > protocol.MAX_MESSAGE_BYTES + 4:
                return "a message over the size limit"
            try:
                messages.extend(reader.feed(data))
            except protocol.ProtocolError as exc:
                return str(exc)
            return None

        streams = {child.result_r, child.stderr_r}
        # one file: until the child exits; several: until its answer for this file came
        while child.poll() is None and problem is None and not (child.several and messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                child.kill()
                return _error(rel, f"{protocol.TIMED_OUT}: importing {rel} took longer than "
                              f"{self.timeout:g}s (the file was abandoned)", tail), True
            wait = [*streams, 0] + ([child.exited] if child.exited is not None else [])
            ready, _, _ = select.select(wait, [], [], min(remaining, 0.05 if child.exited
                                                          is None else remaining))
            for fd in ready:
                if fd == 0:
                    _shutdown()  # the parent is gone (end of file) or broke the protocol
                if fd in streams:
                    data = os.read(fd, _READ)
                    if not data:
                        streams.discard(fd)
                    elif fd == child.stderr_r:
                        tail = (tail + data)[-STDERR_TAIL_BYTES:]
                    elif problem is None:
                        problem = feed(data)
        if problem is None and child.status is not None:
            problem = feed(_drain(child.result_r, protocol.MAX_MESSAGE_BYTES + 4 - received))
        tail = (tail + _drain(child.stderr_r, STDERR_TAIL_BYTES))[-STDERR_TAIL_BYTES:]
        if problem is None and not messages:
            return _error(rel, f"{protocol.DIED} {_describe(child.status)} while importing "
                          f"{rel}", tail), True
        if problem is None and (len(messages) != 1 or reader.pending):
            problem = "not exactly one message"
        # a child of several files says "last" when what a file started still runs
        last = bool(child.several and messages and messages[0].pop("last", None) is True)
        if problem is None:
            try:
                protocol.parse_result(messages[0], rel)
            except protocol.ProtocolError as exc:
                problem = str(exc)
        if problem is not None:
            child.kill()
            return _error(rel, f"{protocol.INVALID}: {problem}", tail), True
        return messages[0], last or child.status is not None


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
    line = read_line(0, buffer)
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
    while (line := read_line(0, buffer)) is not None:
        command = json.loads(line)
        zygote.send(zygote.parse(command["root"], command["file"]))
    _shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
