"""What a forked extraction child runs: one DAG file, or (``[extract] files_per_child``) up to
that many files of one version folder in turn, as Airflow's ``DagBag`` parses many files in
one process.

The worker (:mod:`dagfetch.graphs.worker.zygote`) forks the child with a pipe for its result
(descriptor 3) and its stderr; a child of several files also reads the files' names, one JSON
line each, from descriptor 4 and answers each with one result. Between two files it puts back
``sys.path`` and the working folder, and forgets the modules the version folder provided, so
each file imports its helpers afresh under a module name of its own
(:func:`dagfetch.importing.module_name_for`). What it cannot put back cheaply (the state of
installed modules the files share, a monkeypatch, ``os.environ``) is documented as what the
files of one child may share. A child that is no longer alone after a file (a thread or a
process the file started is still running) says so with its result (``"last": true``, which
the worker strips) and is replaced before the next file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from dagfetch.graphs.worker import limits, protocol

_READ = 65536
#: where a child of several files reads the names of the files (after stdin, out, err, result)
COMMANDS_FD = 4


class VersionNames:
    """What the worker knows of a version folder, handed to its children: the folder
    resolved, its top-level module names and the loaded modules they hide (see
    :func:`dagfetch.importing.version_imports`)."""

    __slots__ = ("folder", "hidden", "top_level")

    def __init__(self, folder: Path, top_level: frozenset[str], hidden: tuple[str, ...]) -> None:
        self.folder, self.top_level, self.hidden = folder, top_level, hidden


class FileParser:
    """The extractors and limits a forked child parses with."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.timeout: float = float(config["file_timeout"])
        self.max_processes: int = int(config["max_processes"])
        self.user: str | None = config.get("user")
        self.files_per_child: int = int(config.get("files_per_child", 1))
        self.extractors: list[Any] = []

    def run_child(self, rel: str | None, names: VersionNames, result_w: int, stderr_w: int,
                  commands_r: int | None) -> NoReturn:
        """In the forked child: parse ``rel``, or (``commands_r``) the files named there."""
        me = os.getpid()
        message: dict[str, Any] | None = None
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            limits.die_with_parent(signal.SIGKILL, os.getppid())
            if commands_r is not None:  # out of the way of the dup2 calls below
                commands_r = fcntl.fcntl(commands_r, fcntl.F_DUPFD, COMMANDS_FD + 1)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(stderr_w, 2)
            os.dup2(result_w, 3)
            if commands_r is not None:
                os.dup2(commands_r, COMMANDS_FD)
            # the parent's pipes (commands, results) are out of the DAG file's reach
            os.closerange(4 if commands_r is None else COMMANDS_FD + 1, limits.max_fd())
            if self.user is not None:
                limits.become_user(self.user)
            limits.limit_time(self.timeout, 1 if commands_r is None else self.files_per_child)
            limits.limit_processes(self.max_processes)
            if commands_r is not None:
                limits.become_subreaper()  # what the files leave behind stays countable
                self._serve(names, me)
            assert rel is not None
            message = self._run(rel, names)
        except BaseException:  # the file's own failures are caught in _result: this is ours
            if rel is None:  # no file asked for yet: the first one's error is this death
                with contextlib.suppress(BaseException):
                    os.write(2, traceback.format_exc().encode("utf-8", "replace"))
                os._exit(1)
            message = {"kind": "result", "file": rel, "graphs": [],
                       "error": traceback.format_exc()}
        finally:
            # a DAG file that called os.fork() has a copy of this code running: only the
            # child the worker forked answers
            if message is not None and os.getpid() == me:
                with contextlib.suppress(BaseException):
                    _write(protocol.encode(message))
            os._exit(0)

    def _run(self, rel: str, names: VersionNames) -> dict[str, Any]:
        from dagfetch.importing import import_file, version_imports

        folder = names.folder
        # the child ends after this file: no need to put sys.modules back
        with version_imports(folder, top_level=names.top_level, throwaway=True,
                             hidden=names.hidden, resolved=True):
            outcome = import_file(folder, rel)
        return self._result(rel, outcome)

    def _serve(self, names: VersionNames, me: int) -> NoReturn:
        """Parse the files named on :data:`COMMANDS_FD` in turn, each answered on its own."""
        from dagfetch.importing import belongs_to, import_file, version_imports

        folder = names.folder
        prefix = str(folder) + os.sep
        buffer = bytearray()
        top_level = names.top_level
        with version_imports(folder, top_level=top_level, throwaway=True, hidden=names.hidden,
                             resolved=True):
            path, cwd = list(sys.path), os.getcwd()
            known = set(sys.modules)
            while (line := read_line(COMMANDS_FD, buffer)) is not None:
                rel = str(json.loads(line)["file"])
                limits.renew_time(self.timeout)
                try:
                    message = self._result(rel, import_file(folder, rel))
                except BaseException:
                    message = {"kind": "result", "file": rel, "graphs": [],
                               "error": traceback.format_exc()}
                if os.getpid() != me:
                    os._exit(0)  # a copy the file forked: only the child itself answers
                # what this file changed that the next one must not see
                sys.path[:] = path
                for name in sys.modules.keys() - known:
                    module = sys.modules.get(name)
                    if module is None or name.partition(".")[0] in top_level \
                            or belongs_to(module, prefix):
                        sys.modules.pop(name, None)
                known = set(sys.modules)
                with contextlib.suppress(OSError):
                    os.chdir(cwd)
                if not limits.alone():
                    message["last"] = True
                try:
                    _write(protocol.encode(message))
                except BaseException:
                    os._exit(1)  # nobody reads our answers any more
        os._exit(0)

    def _result(self, rel: str, outcome: Any) -> dict[str, Any]:
        """The result message of ``rel`` for its module (or its import error)."""
        if isinstance(outcome, str):
            return {"kind": "result", "file": rel, "graphs": [], "error": outcome}
        graphs: list[dict[str, Any]] = []
        try:
            for extractor in self.extractors:
                graphs.extend(g.to_json() for g in extractor(outcome))
            message = {"kind": "result", "file": rel, "graphs": graphs, "error": None}
            protocol.encode(message)  # over the size limit: this file's error
        except Exception:
            return {"kind": "result", "file": rel, "graphs": [], "error": traceback.format_exc()}
        return message


def _write(data: bytes) -> None:
    while data:
        data = data[os.write(3, data):]


def read_line(fd: int, buffer: bytearray) -> bytes | None:
    """The next line on ``fd``; None at end of file (the writer closed or died)."""
    while b"\n" not in buffer:
        chunk = os.read(fd, _READ)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line
