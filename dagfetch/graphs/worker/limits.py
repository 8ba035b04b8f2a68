"""Operating-system bounds for the extraction worker: dying with its parent, reaping what a
DAG file started, and limits on time and processes.

On Linux ``prctl`` makes the kernel signal a worker when its parent dies (a ``kill -9`` of the
syncing process included) and makes the worker the *subreaper* of everything its DAG files
start, so a daemonized grandchild is re-parented to the worker instead of to init and is
killed when its file is done. Elsewhere the worker watches the pipe from its parent instead
(end of file: the parent is gone) and the process group is what is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import os
import resource
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, found once: ``find_library`` runs ``ldconfig`` in a subprocess, which
    cost every forked child tens of milliseconds."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = _libc()
    try:
        return libc is not None and int(libc.prctl(option, value, 0, 0, 0)) == 0
    except AttributeError:
        return False


@functools.cache
def max_fd() -> int:
    """One past the highest descriptor this process may open (the bound for closing them)."""
    with contextlib.suppress(OSError, ValueError):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if 0 < soft < 1 << 20:
            return int(soft)
    return 4096


def prepare() -> None:
    """Look up once, in the worker, what every forked child needs (the children inherit it)."""
    if sys.platform.startswith("linux"):
        _libc()
    max_fd()


def die_with_parent(sig: int, parent_pid: int) -> None:
    """Have the kernel send ``sig`` when the parent dies (Linux); if it already died before
    this call, act now rather than live on as an orphan."""
    _prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


_subreaper = False


def become_subreaper() -> bool:
    """Orphans of our descendants are re-parented to us (Linux), so we can reap them."""
    global _subreaper
    _subreaper = _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    return _subreaper


def limit_time(seconds: float) -> None:
    """A file that spins is stopped by the kernel even if nobody watches it: CPU seconds
    (``SIGXCPU``, then ``SIGKILL``) and wall-clock seconds (``SIGALRM``, default: exit)."""
    whole = max(1, math.ceil(seconds))
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or hard > whole + 1:
            resource.setrlimit(resource.RLIMIT_CPU, (whole, whole + 1))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(whole + 1)


def become_user(name: str) -> None:
    """Drop to ``name``'s uid and groups for good (needs root)."""
    import pwd

    entry = pwd.getpwnam(name)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir


def own_processes(uid: int) -> int:
    """How many processes ``uid`` runs now (RLIMIT_NPROC counts all of them)."""
    count = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
    return count


def limit_processes(extra: int) -> bool:
    """At most ``extra`` more processes for this user (bounds a fork bomb). The kernel does
    not apply RLIMIT_NPROC to root: there only the per-worker pids cgroup bounds it (see
    :mod:`dagfetch.graphs.worker.cgroup`). True when the limit applies."""
    if not hasattr(resource, "RLIMIT_NPROC") or os.getuid() == 0:
        return False
    wanted = own_processes(os.getuid()) + extra
    with contextlib.suppress(ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (wanted, wanted))
        return True
    return False


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see (Linux /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # the command name may hold spaces and parentheses: parse after the last ')'
                fields = stat.read().rsplit(b")", 1)[1].split()
            found[int(entry)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux; empty elsewhere)."""
    if not os.path.isdir("/proc"):
        return set()
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def reap_children() -> None:
    """Collect the exit status of every finished child (ours and adopted orphans)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants(rounds: int = 50) -> None:
    """SIGKILL everything below this process until nothing is left (a fork bomb forks while
    we kill: each round kills all it sees, a bounded number of rounds)."""
    me = os.getpid()
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        # no child at all: as the subreaper of everything below us, nothing is left (the
        # common case, without a scan of /proc)
        if _subreaper:
            return
    for _ in range(rounds):
        found = descendants(me)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        reap_children()
        time.sleep(0.001)
    reap_children()
