"""A pids cgroup per extraction worker, where the machine offers one (Linux, root or a
delegated hierarchy): it bounds how many processes DAG code may run, even as root (the kernel
does not apply ``RLIMIT_NPROC`` to root), and it lists every process of the worker, including
those that left its session, so all of them are killed at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from pathlib import Path

_counter = itertools.count()
_PREFIX = "dagfetch-extract-"


def _remove_stale(base: Path) -> None:
    """Empty cgroups of dagfetch processes that are gone (a ``kill -9`` leaves its own)."""
    with contextlib.suppress(OSError):
        for path in base.glob(f"{_PREFIX}*"):
            owner = path.name.removeprefix(_PREFIX).split("-")[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    path.rmdir()  # fails, as it should, while a process is still in it


def _candidates() -> list[Path]:
    """cgroup v1's pids hierarchy, then the v2 cgroup this process is in."""
    found = [Path("/sys/fs/cgroup/pids")]
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                found.append(Path("/sys/fs/cgroup") / line[3:].lstrip("/"))
    return found


class PidsCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        """A new cgroup allowing ``limit`` processes, or None where there is none to make."""
        name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        for base in _candidates():
            if not (base / "cgroup.procs").exists():
                continue
            _remove_stale(base)
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(limit))
                return cls(path)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
        return None

    def join(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def destroy(self, rounds: int = 100) -> None:
        """Kill every process in the cgroup, then remove it."""
        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for _ in range(rounds):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # the last processes are still being reaped
