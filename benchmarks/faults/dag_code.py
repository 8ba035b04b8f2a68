"""Hostile DAG files: what a malicious committer's file does to extraction.

Each class writes a version folder with a hostile file beside three good ones and runs the
*syncing process* (a fresh interpreter that extracts the folder, logs at DEBUG to stderr,
records into a SQLite graph store and prints its result as JSON) with connection secrets in
its environment. The invariants, after each attempt:

- the syncing process ran no code of the file (a pickle's payload would leave a marker);
- every good file's graph is recorded exactly as if the hostile file were absent;
- stdout is the JSON the syncing process printed, nothing else;
- no process of the extraction is left (workers, their children, what the file started);
- no secret is in stdout, stderr (the log), the database or any other file of the attempt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.faults import Outcome, fault_class
from dagfetch.graphs import Graph, Task

SECRET = "fault-sekrit-31337"  # noqa: S105  (a made-up secret the invariants look for)
GOOD_COUNT = 3
DRIVER = """
import json, logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from dagfetch.graphs import GraphStore
from dagfetch.graphs.extract import extract_version
root, database, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
result = extract_version(root, file_timeout=timeout)
with GraphStore(database) as store:
    store.record_extraction("repo", "v1", result.graphs, result.errors,
                            file_count=result.files)
print(json.dumps({"pid": os.getpid(), "errors": result.errors,
                  "graphs": {path: graph.to_json() for path, graph in result.graphs}}))
"""
# a good file checks that nothing an earlier file did reached it: its dag_id says so
GOOD = """import builtins, json, sys
class Task:
    def __init__(self, task_id, downstream=()):
        self.task_id, self.downstream_task_ids = task_id, set(downstream)
class Dag:
    def __init__(self, dag_id, tasks):
        self.dag_id, self.tasks = dag_id, tasks
clean = (not hasattr(builtins, "MEDDLED") and json.dumps(1) == "1"
         and "/meddled" not in sys.path)
dag = Dag(("good_{n}" if clean else "meddled_{n}"), [Task("a", ["b"]), Task("b")])
"""
EXPECTED = {f"good_{n}.py": Graph.of(f"good_{n}", [Task("a", "Task"), Task("b", "Task")],
                                    [("a", "b")]) for n in range(GOOD_COUNT)}
# processes a hostile file starts write their pids here, one a line
PIDS = "started.pids"

PICKLES = """import gc, os, pickle, struct
class Evil:
    def __reduce__(self):
        return (exec, ("import os; open({scratch!r} + '/ran-in-' + str(os.getpid()), 'w')",))
forged = {{"kind": "result", "file": "good_0.py", "error": None,
          "graphs": [{{"dag_id": "good_0", "tasks": [{{"task_id": "forged"}}], "edges": []}}]}}
try:
    from multiprocessing.connection import Connection
    for conn in [o for o in gc.get_objects() if isinstance(o, Connection)]:
        conn.send(Evil())
except Exception:
    pass
payload, body = pickle.dumps(Evil()), __import__("json").dumps(forged).encode()
for fd in range(0, 256):
    for data in (struct.pack(">I", len(payload)) + payload, struct.pack(">I", len(body)) + body,
                 b"\\xff" * 64, struct.pack(">I", 2 ** 31)):
        try:
            os.write(fd, data)
        except OSError:
            pass
"""
FORK = """import os
if os.fork() == 0:
    os.fork()
"""
FORK_BOMB = """import os, time
for _ in range(400):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        open({scratch!r} + "/{pids}", "a").write(f"{{os.getpid()}}\\n")
        time.sleep(120)
        os._exit(0)
"""
FLOOD = """import os
chunk = b"FLOOD" * 200000
for _ in range(10):
    os.write(1, chunk)
    os.write(2, chunk)
print("also through sys.stdout")
"""
ORPHANS = """import os, subprocess
procs = [subprocess.Popen(["sleep", "300"]),
         subprocess.Popen(["sleep", "300"], start_new_session=True)]
if os.fork() == 0:  # a double-forked daemon
    os.setsid()
    if os.fork() == 0:
        open({scratch!r} + "/{pids}", "a").write(f"{{os.getpid()}}\\n")
        __import__("time").sleep(300)
    os._exit(0)
open({scratch!r} + "/{pids}", "a").write("".join(f"{{p.pid}}\\n" for p in procs))
"""
MEDDLER = """import builtins, json, sys, os
builtins.MEDDLED = True
json.dumps = lambda *a, **k: "meddled"
sys.path.insert(0, "/meddled")
sys.modules["collections"] = None
os.environ["PYTHONPATH"] = "/meddled"
"""
ENVIRONMENT = """import os
found = [f"{{k}}={{v}}" for k, v in os.environ.items() if "SEKRIT" in v]
pid = os.getpid()
while pid > 1:
    try:
        found += [i.decode() for i in open(f"/proc/{{pid}}/environ", "rb").read().split(b"\\0")
                  if b"sekrit" in i]
        with open(f"/proc/{{pid}}/mem", "rb") as mem:
            mem.read(1)
        pid = int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        break
class Task:
    def __init__(self, task_id):
        self.task_id, self.downstream_task_ids = task_id, set()
class Dag:
    def __init__(self, dag_id, tasks):
        self.dag_id, self.tasks = dag_id, tasks
dag = Dag("stolen", [Task(f) for f in found] or [Task("nothing")])
print(found)
if found:
    raise RuntimeError(f"stolen: {{found}}")
"""
SPIN = """open({scratch!r} + "/spinning", "w").close()
while True:
    pass
"""


def _write_version(scratch: Path, hostile: str) -> Path:
    root = scratch / "version"
    root.mkdir(parents=True)
    (root / "a_hostile.py").write_text(hostile.format(scratch=str(scratch), pids=PIDS))
    for n in range(GOOD_COUNT):
        (root / f"good_{n}.py").write_text(GOOD.format(n=n))
    return root


def _environment(scratch: Path) -> dict[str, str]:
    return {**os.environ, "DAGFETCH_CONN_WAREHOUSE": f"s3://AKIAFAULT:{SECRET}@bucket",
            "AWS_SECRET_ACCESS_KEY": SECRET.upper(), "HOME": str(scratch)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _extraction_processes(driver_pid: int) -> list[int]:
    """Workers of this syncing process (they name it on their command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"dagfetch.graphs.worker.zygote" in cmdline and \
                    str(driver_pid).encode() in cmdline and _alive(int(entry)):
                found.append(int(entry))
    return found


def _left_over(scratch: Path, driver_pid: int, wait: float = 5.0) -> list[int]:
    started = scratch / PIDS
    deadline = time.monotonic() + wait
    while True:
        pids = [int(p) for p in started.read_text().split()] if started.exists() else []
        left = [p for p in pids if _alive(p)] + _extraction_processes(driver_pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _leaks(scratch: Path, *texts: str) -> list[str]:
    where = [f"output {n}" for n, text in enumerate(texts)
             if SECRET in text or SECRET.upper() in text]
    for path in scratch.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if SECRET.encode() in data or SECRET.upper().encode() in data:
                where.append(str(path.relative_to(scratch)))
    return where


def attempt(scratch: Path, hostile: str, *, timeout: float = 10.0,
            allow_error: bool = True) -> Outcome:
    root = _write_version(scratch, hostile)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(root), f"sqlite:///{scratch / 'graphs.sqlite3'}",
         str(timeout)], capture_output=True, text=True, timeout=300, cwd=scratch,
        env=_environment(scratch))
    problems = []
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return Outcome(False, escaped=True, detail=f"stdout is not dagfetch's JSON "
                       f"(exit {done.returncode}): {done.stdout[:80]!r} {done.stderr[-300:]!r}")
    driver_pid = result["pid"]
    if list(scratch.glob(f"ran-in-{driver_pid}")):
        problems.append("code of the DAG file ran in the syncing process")
    good = {p: Graph.from_json(g) for p, g in result["graphs"].items() if p.startswith("good_")}
    if good != EXPECTED:
        problems.append(f"good files recorded otherwise: {sorted(good)}")
    if any(p.startswith("good_") for p in result["errors"]):
        problems.append(f"good files failed: {sorted(result['errors'])}")
    if not allow_error and "a_hostile.py" in result["errors"]:
        problems.append("the hostile file did not parse")
    left = _left_over(scratch, driver_pid)
    if left:
        problems.append(f"{len(left)} processes left")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    leaks = _leaks(scratch, done.stdout, done.stderr)
    if leaks:
        problems.append(f"a secret in {', '.join(leaks)}")
    escaped = bool(leaks) or any("syncing process" in p or "left" in p for p in problems)
    return Outcome(not problems, escaped=escaped, detail="; ".join(problems))


def _register(name: str, description: str, hostile: str, **kwargs: object) -> None:
    def run(scratch: Path, number: int) -> Outcome:
        return attempt(scratch, hostile, **kwargs)  # type: ignore[arg-type]

    fault_class(name, "dag-code", description, attempts=20, quick_attempts=1)(run)


_register("dag-pickles-and-forged-messages",
          "a DAG file writes pickles, forged results and garbage on every descriptor", PICKLES)
_register("dag-fork", "a DAG file calls os.fork() (twice) and goes on", FORK, allow_error=False)
_register("dag-fork-bomb", "a DAG file forks hundreds of sleeping children", FORK_BOMB)
_register("dag-output-flood", "a DAG file writes 10 MB each on fd 1 and fd 2", FLOOD,
          allow_error=False)
_register("dag-orphan-children",
          "a DAG file starts children, one in a new session, and a double-forked daemon",
          ORPHANS, allow_error=False)
_register("dag-meddles-with-builtins-and-stdlib",
          "a DAG file changes builtins, a stdlib module, sys.path, sys.modules, os.environ",
          MEDDLER)
_register("dag-reads-environment-and-parent-memory",
          "a DAG file reads os.environ and its ancestors' /proc environ and memory",
          ENVIRONMENT)
_register("dag-spins", "a DAG file spins for ever (per-file time limit)", SPIN, timeout=2.0)


@fault_class("dag-parent-killed", "dag-code",
             "the syncing process is killed (-9) while a DAG file spins", attempts=20,
             quick_attempts=1)
def parent_killed(scratch: Path, number: int) -> Outcome:
    root = _write_version(scratch, SPIN)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(root),
                             f"sqlite:///{scratch / 'graphs.sqlite3'}", "600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch,
                            env=_environment(scratch))
    deadline = time.monotonic() + 120
    while not (scratch / "spinning").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not (scratch / "spinning").exists():
        proc.kill()
        proc.wait()
        return Outcome(False, detail="the spinning file never ran")
    time.sleep(0.05 * (number % 5))  # kill at different moments of the spin
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _left_over(scratch, proc.pid, wait=10.0)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return Outcome(not left, escaped=bool(left),
                   detail=f"{len(left)} processes outlived the syncing process" if left else "")
