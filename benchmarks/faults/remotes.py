"""Fault classes of the remote side: servers that stall, reset, lie about sizes or never stop
sending, remotes that hold names a reviewer cannot see, and files rewritten while a sync
reads them.

Each attempt syncs a good state first, then meets the fault, then heals the remote and syncs
again. Survived means every invariant of :mod:`benchmarks.faults` held: ``current`` is a
complete version equal to a state the remote had, no version on disk differs from its
record, nothing was written outside the cache (staging included), and the sync after the
fault succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from benchmarks.faults import Outcome, fault_class
from dagfetch.errors import DagfetchError
from dagfetch.testing import one_repository
from dagfetch.workspace import Workspace
from tests.servers.hostile import Behaviour, HostileServer

MiB = 1024 * 1024
Files = dict[str, bytes]
Fault = Callable[[HostileServer, Files], None]  # what goes wrong, given the served files

# limits tight enough that each attempt ends in about a second
LIMITS = {"read_timeout": 0.5, "connect_timeout": 2, "max_file_bytes": MiB, "sync_timeout": 20}

_server: HostileServer | None = None
_server_lock = threading.Lock()


def hostile_server() -> HostileServer:
    """One hostile HTTP server per process, shared by the attempts (each resets it)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = HostileServer()
            _server.start()
        return _server


def state(seed: int, files: int = 12) -> Files:
    rng = random.Random(seed)  # noqa: S311 - test content, not a secret
    return {f"dags/d{i:02}.py": f"# {seed}\nX = {rng.random()!r}\n".encode() * 8
            for i in range(files)}


def snapshot(folder: Path) -> Files:
    out: Files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            full = Path(dirpath) / name
            out[full.relative_to(folder).as_posix()] = (
                b"-> " + os.readlink(full).encode() if full.is_symlink() else full.read_bytes()
            )
    return out


def files_outside(scratch: Path, cache: Path) -> set[str]:
    """The files under ``scratch`` but outside ``cache``."""
    return {p.relative_to(scratch).as_posix() for p in scratch.rglob("*")
            if p.is_file() and cache not in p.parents}


def outside_the_cache(scratch: Path, cache: Path, before: set[str]) -> set[str]:
    """Files that appeared under ``scratch`` but outside ``cache`` since ``before``."""
    return files_outside(scratch, cache) - before


def _local_synced(scratch: Path, remote: Path, files: Files) -> Workspace:
    """A file:// remote holding ``files``, synced once."""
    for rel, data in files.items():
        (remote / rel).parent.mkdir(parents=True, exist_ok=True)
        (remote / rel).write_bytes(data)
    ws = one_repository(str(remote), scratch)
    ws.sync_one("r")
    return ws


def check(ws: Workspace, states: Iterable[Files], scratch: Path, before: set[str],
          after_fault: Callable[[], None]) -> Outcome:
    """The invariants, then heal the remote (``after_fault``) and check the next sync."""
    known = [dict(s) for s in states]
    cache = ws.cache.root
    current = ws.cache.current("r")
    if current is None:
        return Outcome(False, lost_data=True, detail="no current version after the fault")
    served = snapshot(Path(current.path))
    if served not in known:
        return Outcome(False, partial_version=True,
                       detail=f"current holds {len(served)} files matching no remote state")
    for entry in ws.versions("r"):
        tree = Path(entry.version.path)
        if tree.is_dir() and set(snapshot(tree)) != {f.path for f in entry.version.files}:
            return Outcome(False, partial_version=True,
                           detail=f"version {entry.version.version_id} differs from its record")
    staging = ws.cache.layout.staging("r")
    if staging.exists() and any(staging.iterdir()):
        return Outcome(False, partial_version=True, detail="staging left behind")
    escaped = outside_the_cache(scratch, cache, before)
    if escaped:
        return Outcome(False, escaped=True, detail=f"written outside the cache: {sorted(escaped)}")
    after_fault()
    try:
        ws.sync_one("r")
    except DagfetchError as exc:
        return Outcome(False, detail=f"the sync after the fault failed: {exc}")
    return Outcome(True)


def _http_attempt(scratch: Path, attempt: int, fault: Fault,
                  limits: Mapping[str, object] | None = None) -> Outcome:
    server = hostile_server()
    server.reset()
    prefix = f"a{attempt}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    good, healed = state(attempt), state(attempt + 10_000)

    def serve(files: Files) -> None:
        server.loops.clear()
        for name in [n for n in server.files if n.startswith(prefix + "/")]:
            del server.files[name]
        for rel, data in files.items():
            server.files[f"{prefix}/{rel}"] = Behaviour(data)

    serve(good)
    ws = one_repository(f"{server.url}/{prefix}/", scratch,
                        options={"retries": 2}, limits=dict(limits or LIMITS))
    ws.sync_one("r")
    before = files_outside(scratch, ws.cache.root)
    fault(server, {f"{prefix}/{rel}": data for rel, data in good.items()})
    try:
        ws.sync_one("r")
        return Outcome(False, detail="the faulty server's sync was published")
    except DagfetchError:
        pass  # expected: the fault is refused
    return check(ws, [good], scratch, before, lambda: serve(healed))


def _misbehave(mode: str, body: Callable[[bytes], bytes], **fields: int) -> Fault:
    """A fault: the middle file of the state gets new content served as ``mode``."""

    def fault(server: HostileServer, files: Files) -> None:
        name = sorted(files)[len(files) // 2]
        server.files[name] = Behaviour(body(files[name]), mode=mode, **fields)

    return fault


def _changed(data: bytes) -> bytes:
    return data + b"# changed\n"


def _new(data: bytes) -> bytes:
    return b"new"


@fault_class("remote-stall", "remote",
             "an HTTP server sends headers and one byte of a file, then nothing")
def stall(scratch: Path, attempt: int) -> Outcome:
    return _http_attempt(scratch, attempt, _misbehave("stall", _changed))


@fault_class("remote-reset", "remote",
             "an HTTP server resets the connection half-way through a file")
def reset(scratch: Path, attempt: int) -> Outcome:
    return _http_attempt(scratch, attempt, _misbehave("reset", _changed))


@fault_class("remote-lying-size", "remote",
             "an HTTP index says a file has 10 bytes and the GET streams 64 MiB")
def lying_size(scratch: Path, attempt: int) -> Outcome:
    return _http_attempt(scratch, attempt, _misbehave("lying", _new, listed_size=10,
                                                      stream_bytes=64 * MiB))


@fault_class("remote-endless-body", "remote",
             "an HTTP server answers one file with a chunked body that never ends")
def endless_body(scratch: Path, attempt: int) -> Outcome:
    return _http_attempt(scratch, attempt, _misbehave("endless", _new, listed_size=-1))


@fault_class("remote-folder-loop", "remote",
             "an HTTP index links a folder that links a deeper one, for ever")
def folder_loop(scratch: Path, attempt: int) -> Outcome:
    def fault(server: HostileServer, files: Files) -> None:
        prefix = next(iter(files)).split("/", 1)[0]
        server.loops.add(f"{prefix}/dags/loop")

    return _http_attempt(scratch, attempt, fault)


# names a reviewer cannot see, and names that are one file on macOS and Windows
HOSTILE_NAMES = ("evil\x7f.py", "evil\u0085.py", "report\u202eyp.txt", "a\u2066b.py",
                 "Dags/twin.py", "caf\u00e9.py|cafe\u0301.py")


@fault_class("remote-hostile-names", "names",
             "a file:// remote gains a name with a control or bidi character, or a twin")
def hostile_names(scratch: Path, attempt: int) -> Outcome:
    remote = scratch / "remote"
    good = state(attempt)
    ws = _local_synced(scratch, remote, good)
    before = files_outside(scratch, ws.cache.root)
    added: list[Path] = []
    for name in HOSTILE_NAMES[attempt % len(HOSTILE_NAMES)].split("|"):
        path = remote / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"import os\n")
        added.append(path)
    before |= {p.relative_to(scratch).as_posix() for p in added}
    try:
        ws.sync_one("r")
        return Outcome(False, escaped=True, detail="a hostile name was published")
    except DagfetchError:
        pass

    def heal() -> None:
        for path in added:
            path.unlink()

    return check(ws, [good], scratch, before, heal)


@fault_class("remote-rewritten-while-read", "remote",
             "a file:// remote's files are rewritten (same size) while syncs read them")
def rewritten_while_read(scratch: Path, attempt: int) -> Outcome:
    remote = scratch / "remote"
    states = [state(attempt), state(attempt + 50_000)]
    ws = _local_synced(scratch, remote, states[0])
    before = files_outside(scratch, ws.cache.root)
    stop = threading.Event()

    def writer() -> None:
        """Flip the whole tree between the two states, one file at a time, renamed in."""
        turn = 0
        while not stop.is_set():
            turn += 1
            for rel, data in states[turn % 2].items():
                tmp = scratch / f".{turn}.tmp"  # beside the remote: never listed
                tmp.write_bytes(data)
                os.replace(tmp, remote / rel)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(5):
            # a file changed during the sync is refused, never recorded mixed
            with contextlib.suppress(DagfetchError):
                ws.sync_one("r")
    finally:
        stop.set()
        thread.join()
    # mid-flip trees are states the remote really had too: any mix of the two, file by file
    current = ws.cache.current("r")
    if current is None:
        return Outcome(False, lost_data=True, detail="no current version")
    served = snapshot(Path(current.path))
    mixed_ok = all(served.get(rel) in (states[0][rel], states[1][rel]) for rel in states[0])
    if set(served) != set(states[0]) or not mixed_ok:
        return Outcome(False, partial_version=True, detail="current holds bytes no state had")
    record = {f.path: f for f in current.files}
    for rel, data in served.items():
        if record[rel].sha256 != hashlib.sha256(data).hexdigest():
            return Outcome(False, partial_version=True, detail=f"{rel}: record and bytes differ")
    return check(ws, [served], scratch, before, lambda: None)
