"""A DAG file is hostile code: what it can do to the extraction, the syncing process and the
machine. Each test here failed against the spawn-and-pickle worker dagfetch had before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dagfetch.graphs import Graph, Task
from dagfetch.graphs.extract import extract_version
from dagfetch.graphs.worker import limits
from dagfetch.graphs.worker.settings import WorkerSettings
from tests.graphs.dagfiles import chain_dag, repo_files
from tests.graphs.test_graph_extract import write_tree

GOOD = Graph.of("good", [Task("one", "BashOperator"), Task("two", "BashOperator")],
                [("one", "two")])
REPO_ROOT = Path(__file__).resolve().parents[2]

# Sends on every descriptor and on every multiprocessing connection it can find: a pickle
# that, once unpickled, writes a marker naming the process that ran it; then a forged
# result for another file. The file itself defines no DAG.
HOSTILE = b'''
import gc, os, pickle, struct
MARKER = '%(marker)s'

class Evil:
    def __reduce__(self):
        return (exec, ("import os; open(%%r + str(os.getpid()), 'w').close()" %% MARKER,))

forged = {"kind": "result", "file": "z_good.py", "error": None,
          "graphs": [{"dag_id": "good", "tasks": [{"task_id": "forged"}], "edges": []}]}
try:
    from multiprocessing.connection import Connection
    for conn in [o for o in gc.get_objects() if isinstance(o, Connection)]:
        try:
            conn.send(("done", "z_good.py", [forged["graphs"][0]], None))
            conn.send(Evil())
        except Exception:
            pass
except Exception:
    pass
payload = pickle.dumps(Evil())
body = __import__("json").dumps(forged).encode()
for fd in range(3, 64):
    for data in (struct.pack(">I", len(payload)) + payload, struct.pack(">I", len(body)) + body,
                 b"\\xff" * 64):
        try:
            os.write(fd, data)
        except OSError:
            pass
'''


def run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """``python script.py``: a user's own script, with its own stdout."""
    script = tmp_path / "script.py"
    script.write_text(body)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_pickles_and_forged_messages_never_reach_the_syncing_process(tmp_path: Path) -> None:
    marker = str(tmp_path / "ran-in-")
    files = repo_files(a_hostile=HOSTILE % {b"marker": marker.encode()},
                       z_good=chain_dag("good", ["one", "two"]))
    result = extract_version(write_tree(tmp_path / "v", files), settings=WorkerSettings(workers=1))
    assert not Path(marker + str(os.getpid())).exists(), "the pickle ran in the syncing process"
    assert result.graphs == (("z_good.py", GOOD),)
    assert "worker sent an invalid message" in result.errors["a_hostile.py"]


def test_a_dag_file_that_forks_does_not_break_extraction(tmp_path: Path) -> None:
    files = repo_files(a_forks=b"import os\nos.fork()\n" + chain_dag("forked", ["x", "y"]),
                       z_good=chain_dag("good", ["one", "two"]))
    result = extract_version(write_tree(tmp_path / "v", files), settings=WorkerSettings(workers=1))
    assert result.errors == {}
    assert {g.dag_id for _, g in result.graphs} == {"forked", "good"}
    again = extract_version(tmp_path / "v", settings=WorkerSettings(workers=1))
    assert again.graphs == result.graphs


def test_output_on_fd_1_and_2_never_reaches_dagfetchs_stdout(tmp_path: Path) -> None:
    files = repo_files(
        loud=b"import os\nos.write(1, b'OUT' * 400000)\nos.write(2, b'ERR' * 400000)\n"
             + chain_dag("loud", ["p", "q"]),
        z_good=chain_dag("good", ["one", "two"]))
    root = write_tree(tmp_path / "v", files)
    done = run_script(tmp_path, f"""
import json
from dagfetch.graphs.extract import extract_version
result = extract_version({str(root)!r})
print(json.dumps(sorted(g.dag_id for _, g in result.graphs)))
""")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["good", "loud"]  # stdout is exactly what dagfetch printed
    assert "OUT" not in done.stderr and "ERRERR" not in done.stderr


def test_the_callers_main_module_is_never_run_again(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "v", repo_files(z_good=chain_dag("good", ["one", "two"])))
    done = run_script(tmp_path, f"""
print("script body ran", flush=True)
if __name__ == "__main__":
    from dagfetch.graphs.extract import extract_version
    print(len(extract_version({str(root)!r}).graphs), flush=True)
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script body ran", "1"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads processes from /proc")
def test_children_a_dag_file_starts_do_not_outlive_extraction(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    files = repo_files(spawner=f"""
import subprocess
procs = [subprocess.Popen(["sleep", "300"]),
         subprocess.Popen(["sleep", "301"], start_new_session=True)]
open({str(pids)!r}, "w").write(" ".join(str(p.pid) for p in procs))
""".encode() + chain_dag("spawner", ["a"]))
    result = extract_version(write_tree(tmp_path / "v", files))
    assert result.errors == {}
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    assert not [pid for pid in started if _alive(pid)]


def test_changes_to_builtins_stdlib_and_sys_path_never_reach_the_next_file(tmp_path: Path) -> None:
    files = repo_files(
        a_meddler=b"import builtins, json, sys\nbuiltins.MEDDLED = True\n"
                  b"json.dumps = lambda *a, **k: 'meddled'\nsys.path.insert(0, '/meddled')\n",
        b_victim=b"import builtins, json, sys\nfrom lib.dagshape import DAG, BashOperator\n"
                 b"clean = not hasattr(builtins, 'MEDDLED') and json.dumps(1) == '1' "
                 b"and '/meddled' not in sys.path\n"
                 b"dag = DAG('clean' if clean else 'meddled')\nBashOperator(dag, 'a')\n")
    result = extract_version(write_tree(tmp_path / "v", files), settings=WorkerSettings(workers=1))
    assert [g.dag_id for _, g in result.graphs] == ["clean"]


ENV_PROBE = b"""import os
from lib.dagshape import DAG, BashOperator
dag = DAG('env')
for name in sorted(os.environ):
    if name.startswith(('DAGFETCH_', 'ALLOWED_', 'AWS_')):
        BashOperator(dag, name.lower())
"""


def test_the_environment_is_scrubbed_to_the_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFETCH_CONN_WAREHOUSE", "s3://AKIAEXAMPLE:sekrit-value@bucket")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-sekrit-value")
    monkeypatch.setenv("ALLOWED_SETTING", "1")
    files = repo_files(probe=ENV_PROBE)
    result = extract_version(write_tree(tmp_path / "v", files),
                             settings=WorkerSettings(environment=("ALLOWED_*",)))
    assert [t.task_id for _, g in result.graphs for t in g.tasks] == ["allowed_setting"]


def test_connection_variables_cannot_be_configured_through(tmp_path: Path) -> None:
    from dagfetch.errors import ConfigError
    from dagfetch.graphs.worker.environment import check_patterns

    with pytest.raises(ConfigError, match="connection secrets"):
        check_patterns(["DAGFETCH_*"], "extract.environment")
    assert check_patterns(["AIRFLOW__*"], "extract.environment") == ("AIRFLOW__*",)


def test_secrets_known_only_from_the_environment_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFETCH_CONN_WAREHOUSE", "postgresql://etl:pg-sekrit-42@db/x")
    monkeypatch.setenv("UPSTREAM_API_TOKEN", "tok-envonly-1234")
    files = repo_files(leaky=b"raise RuntimeError('denied: tok-envonly-1234 / pg-sekrit-42')\n")
    result = extract_version(write_tree(tmp_path / "v", files))
    assert "tok-envonly-1234" not in result.errors["leaky.py"]
    assert "pg-sekrit-42" not in result.errors["leaky.py"]
    assert "denied: *** / ***" in result.errors["leaky.py"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads processes from /proc")
def test_the_worker_dies_with_a_killed_syncing_process(tmp_path: Path) -> None:
    started = tmp_path / "spinning"
    files = repo_files(spin=f"open({str(started)!r}, 'w').close()\nwhile True:\n    pass\n"
                       .encode())
    root = write_tree(tmp_path / "v", files)
    script = tmp_path / "sync.py"
    script.write_text(f"from dagfetch.graphs.extract import extract_version\n"
                      f"extract_version({str(root)!r}, file_timeout=120)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the DAG file never ran"
        below = limits.descendants(proc.pid)
        assert below
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while [pid for pid in below if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in below if _alive(pid)], "extraction processes outlived dagfetch"


def test_a_fork_bomb_is_bounded_and_cleaned_up(tmp_path: Path) -> None:
    from dagfetch.graphs.worker.cgroup import PidsCgroup

    probe = PidsCgroup.create(4)
    if probe is None and os.getuid() == 0:
        pytest.skip("root without a pids cgroup: only the time limit bounds a fork bomb")
    if probe is not None:
        probe.destroy()
    count = tmp_path / "forks"
    # bounded itself (at most 500 forks) so that a broken limit fails the test, not the machine
    bomb = f"""
import os, time
forks = 0
for _ in range(500):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    forks += 1
open({str(count)!r}, "w").write(str(forks))
""".encode()
    files = repo_files(a_bomb=bomb + chain_dag("bomb", ["a"]),
                       z_good=chain_dag("good", ["one", "two"]))
    result = extract_version(write_tree(tmp_path / "v", files),
                             settings=WorkerSettings(workers=1, max_processes=16))
    assert int(count.read_text()) <= 16
    assert {g.dag_id for _, g in result.graphs} == {"bomb", "good"}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_secrets_read_from_the_parents_environment_never_reach_a_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFETCH_CONN_WAREHOUSE", "s3://AKIAEXAMPLE:proc-sekrit-77@bucket")
    reader = b"""import os
from lib.dagshape import DAG, BashOperator
dag = DAG('stolen')
pid = os.getppid()
while pid > 1:
    try:
        for item in open(f'/proc/{pid}/environ', 'rb').read().split(b'\\0'):
            if item.startswith(b'DAGFETCH_CONN_'):
                BashOperator(dag, item.decode())
        pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
    except OSError:
        break
BashOperator(dag, 'tail')
"""
    root = write_tree(tmp_path / "v", repo_files(reader=reader,
                                                 z_good=chain_dag("good", ["one", "two"])))
    done = run_script(tmp_path, f"""
import json
from dagfetch.graphs.extract import extract_version
result = extract_version({str(root)!r})
print(json.dumps([result.errors, [g.to_json() for _, g in result.graphs]]))
""")
    assert "proc-sekrit-77" not in done.stdout + done.stderr
    errors, graphs = json.loads(done.stdout)
    assert [g["dag_id"] for g in graphs] == ["good"]
    assert "holds a secret" in errors["reader.py"]


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="running DAG files as another user needs root")
def test_dag_files_can_run_as_another_user(tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    probe = b"""import os
from lib.dagshape import DAG, BashOperator
dag = DAG('who')
BashOperator(dag, f'uid-{os.getuid()}')
try:
    open(f'/proc/{os.getppid()}/mem', 'rb').read(1)
    BashOperator(dag, 'read-the-workers-memory')
except OSError:
    pass
"""
    # pytest's own temporary folders are private to root: the version must be readable
    with tempfile.TemporaryDirectory() as shared:
        root = write_tree(Path(shared) / "v", repo_files(probe=probe))
        for path in [Path(shared), *Path(shared).rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        settings = WorkerSettings.from_table({"user": "nobody"})
        result = extract_version(root, settings=settings)
    assert result.errors == {}
    assert [t.task_id for _, g in result.graphs for t in g.tasks] == [f"uid-{nobody.pw_uid}"]
