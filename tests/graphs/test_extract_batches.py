"""``[extract] files_per_child``: one forked child parses several DAG files of a version in
turn (opt-in). Each file still gets exactly one result; a file that times out, dies or
leaves something running costs no other file its graph; each file gets its own module and a
``sys.path`` put back; versions never share a child."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.errors import ManifestError
from dagfetch.graphs.extract import ExtractResult, extract_version, resolve_extractors
from dagfetch.graphs.worker.pool import WorkerPool
from dagfetch.graphs.worker.settings import WorkerSettings
from tests.graphs.dagfiles import repo_files
from tests.graphs.test_graph_extract import write_tree

#: a DAG whose dag_id names the process that ran the file: ``<name>@<pid>``
PID_DAG = """import os
from lib.dagshape import DAG, BashOperator
dag = DAG(({name}) + '@' + str(os.getpid()))
BashOperator(dag, 'a')
"""


def pid_dag(name: str, before: bytes = b"", *, expression: str | None = None) -> bytes:
    """``name``'s DAG (or the one named by the Python ``expression``) after ``before``."""
    return before + PID_DAG.format(name=expression or repr(name)).encode()


def by_file(extracted: ExtractResult) -> dict[str, tuple[str, int]]:
    """file -> (name, pid of the process that parsed it)."""
    found = {}
    for file, graph in extracted.graphs:
        name, _, pid = graph.dag_id.partition("@")
        found[file] = (name, int(pid))
    return found


def extract(root: Path, files_per_child: int, file_timeout: float = 30.0) -> ExtractResult:
    chosen = WorkerSettings(workers=1, file_timeout=file_timeout,
                            files_per_child=files_per_child)
    return extract_version(root, settings=chosen)


def test_several_files_share_a_child_only_when_asked_and_each_gets_one_result(
    tmp_path: Path,
) -> None:
    root = write_tree(tmp_path / "v", repo_files(**{f"d{i}": pid_dag(f"d{i}") for i in range(7)}))
    default, batched = extract(root, 1), extract(root, 3)
    assert default.errors == batched.errors == {}
    files = [f"d{i}.py" for i in range(7)]
    assert sorted(by_file(default)) == sorted(by_file(batched)) == files
    assert len({pid for _, pid in by_file(default).values()}) == 7  # a fork per file
    pids = [by_file(batched)[file][1] for file in files]
    assert [len(set(pids[i:i + 3])) for i in (0, 3, 6)] == [1, 1, 1]
    assert len(set(pids)) == 3


BAD_FILES = {
    "dies": b"import os\nos._exit(3)\n",
    "spins": b"while True:\n    pass\n",
    "exits": b"import sys\nsys.exit(4)\n",
    "raises": b"raise ValueError('no')\n",
    "forged": b"import os\nos.write(3, b'\\x00\\x00\\x00\\x02{}')\n",
}


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_a_bad_file_in_a_batch_gets_the_error_it_gets_alone_and_costs_no_other_file(
    tmp_path: Path, bad: str,
) -> None:
    files = {f"a{i}": pid_dag(f"a{i}") for i in range(3)}
    files |= {f"c{i}": pid_dag(f"c{i}") for i in range(3)}
    root = write_tree(tmp_path / "v", repo_files(b_bad=BAD_FILES[bad], **files))
    alone, batched = extract(root, 1, file_timeout=2), extract(root, 10, file_timeout=2)
    assert sorted(alone.errors) == sorted(batched.errors) == ["b_bad.py"]
    first_line = {name: text.splitlines()[0] for name, text in alone.errors.items()}
    assert first_line == {name: text.splitlines()[0] for name, text in batched.errors.items()}
    parsed = by_file(batched)
    assert sorted(parsed) == [f"{p}{i}.py" for p in "ac" for i in range(3)]
    before = {parsed[f"a{i}.py"][1] for i in range(3)}
    after = {parsed[f"c{i}.py"][1] for i in range(3)}
    assert len(before) == 1 and len(after) == 1
    if bad in ("raises", "exits"):  # the file's own exception: the child parses on
        assert before == after
    else:  # the child was killed with the file: the files after it get a fresh one
        assert before != after


@pytest.mark.parametrize("started", [
    b"import subprocess\nsubprocess.Popen(['sleep', '30'])\n",
    b"import os, time\nif os.fork() == 0:\n    time.sleep(30)\n",
    b"import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True)"
    b".start()\n",
], ids=["process", "fork", "thread"])
def test_what_a_file_left_running_ends_its_child_after_its_own_result(
    tmp_path: Path, started: bytes,
) -> None:
    root = write_tree(tmp_path / "v", repo_files(a=pid_dag("a"), b=pid_dag("b", started),
                                                 c=pid_dag("c"), d=pid_dag("d")))
    batched = extract(root, 10)
    assert batched.errors == {}
    parsed = by_file(batched)
    assert parsed["a.py"][1] == parsed["b.py"][1]  # b keeps its graph
    assert parsed["c.py"][1] != parsed["b.py"][1]  # but c is not parsed beside what b left
    assert parsed["c.py"][1] == parsed["d.py"][1]


def test_each_file_of_a_batch_gets_its_own_module_path_and_helper_modules(
    tmp_path: Path,
) -> None:
    meddler = (b"import os, sys\nimport lib.dagshape\nlib.dagshape.MEDDLED = True\n"
               b"sys.path.insert(0, '/meddled')\nos.chdir('/')\nSHARED = 'meddler'\n")
    victim = (b"import os, sys\nimport lib.dagshape\n"
              b"clean = (not hasattr(lib.dagshape, 'MEDDLED') and '/meddled' not in sys.path\n"
              b"         and 'SHARED' not in globals() and os.getcwd() != '/')\n"
              b"names = [m for m in sys.modules if m.startswith('_dagfetch_')]\n")
    root = write_tree(tmp_path / "v", repo_files(
        a=pid_dag("a", meddler),
        b=pid_dag("b", victim, expression="'clean' if clean and names == [__name__] "
                                           "else 'meddled'")))
    parsed = by_file(extract(root, 10))
    assert parsed["a.py"][1] == parsed["b.py"][1]
    assert parsed["b.py"][0] == "clean"


def test_files_of_two_versions_never_share_a_child(tmp_path: Path) -> None:
    settings = WorkerSettings(workers=1, files_per_child=10)
    v1 = write_tree(tmp_path / "v1", repo_files(a=pid_dag("a"), b=pid_dag("b")))
    v2 = write_tree(tmp_path / "v2", repo_files(a=pid_dag("a"), b=pid_dag("b")))
    with WorkerPool(resolve_extractors(None), settings) as pool:
        first = by_file(extract_version(v1, settings=settings, pool=pool))
        second = by_file(extract_version(v2, settings=settings, pool=pool))
        assert pool.started == 1
    assert first["a.py"][1] == first["b.py"][1] and second["a.py"][1] == second["b.py"][1]
    assert first["a.py"][1] != second["a.py"][1]


@pytest.mark.parametrize("value", [0, -2, True, 1.5, "50", None])
def test_files_per_child_must_be_a_whole_number_of_at_least_one(value: object) -> None:
    with pytest.raises(ManifestError, match=r"^dagfetch.toml: extract.files_per_child: must be "
                       r"a whole number of at least 1"):
        WorkerSettings.from_table({"files_per_child": value}, "dagfetch.toml")
    assert WorkerSettings.from_table({"files_per_child": 50}).files_per_child == 50
    assert WorkerSettings.from_table({}).files_per_child == 1
