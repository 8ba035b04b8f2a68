"""Warm extraction workers: kept between extractions, isolation unchanged; what they import
ahead of the files; the extractors' wording of a dag_id defined twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dagfetch.graphs.extract import extract_version, resolve_extractors
from dagfetch.graphs.worker.imports import imported_names
from dagfetch.graphs.worker.pool import WorkerPool
from dagfetch.graphs.worker.settings import WorkerSettings
from tests.graphs.dagfiles import chain_dag, repo_files
from tests.graphs.test_graph_extract import write_tree

ONE = WorkerSettings(workers=1)


def pool_for(extractors: list[str] | None = None) -> WorkerPool:
    return WorkerPool(resolve_extractors(extractors), ONE)


def test_one_warm_worker_serves_every_version_and_a_dead_one_is_replaced(
    tmp_path: Path,
) -> None:
    v1 = write_tree(tmp_path / "v1", repo_files(etl=chain_dag("etl", ["a", "b"])))
    v2 = write_tree(tmp_path / "v2", repo_files(etl=chain_dag("etl", ["a", "b", "c"]),
                                                more=chain_dag("more", ["x"])))
    with pool_for() as pool:
        first = extract_version(v1, settings=ONE, pool=pool)
        second = extract_version(v2, settings=ONE, pool=pool)
        assert pool.started == 1 and pool.alive == 1
        assert [len(g.tasks) for _, g in first.graphs] == [2]
        assert sorted((g.dag_id, len(g.tasks)) for _, g in second.graphs) == [("etl", 3),
                                                                               ("more", 1)]
        [worker] = pool._workers
        os.killpg(worker.proc.pid, signal.SIGKILL)  # dies while idle, between extractions
        worker.proc.wait()
        again = extract_version(v2, settings=ONE, pool=pool)
        assert again.graphs == second.graphs and again.errors == {}
        assert pool.started == 2
    assert pool.alive == 0


def test_a_warm_worker_still_gives_every_file_a_fresh_interpreter(tmp_path: Path) -> None:
    meddler = repo_files(meddler=b"import builtins, json, sys\nbuiltins.MEDDLED = True\n"
                                 b"json.dumps = lambda *a, **k: 'meddled'\n"
                                 b"sys.path.insert(0, '/meddled')\n"
                                 b"import lib.dagshape\nlib.dagshape.MEDDLED = True\n")
    victim = repo_files(victim=b"import builtins, json, sys\nimport lib.dagshape\n"
                               b"from lib.dagshape import DAG, BashOperator\n"
                               b"clean = not hasattr(builtins, 'MEDDLED') and json.dumps(1) == "
                               b"'1' and '/meddled' not in sys.path and not hasattr(lib.dagshape,"
                               b" 'MEDDLED')\n"
                               b"dag = DAG('clean' if clean else 'meddled')\n"
                               b"BashOperator(dag, 'a')\n")
    with pool_for() as pool:
        extract_version(write_tree(tmp_path / "v1", meddler), settings=ONE, pool=pool)
        result = extract_version(write_tree(tmp_path / "v2", victim), settings=ONE, pool=pool)
        assert pool.started == 1
    assert [g.dag_id for _, g in result.graphs] == ["clean"]


def test_a_pool_for_other_settings_is_refused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "v", repo_files(etl=chain_dag("etl", ["a"])))
    with pool_for() as pool, pytest.raises(ValueError, match="other extractors or settings"):
        extract_version(root, settings=WorkerSettings(workers=2), pool=pool)


WARM_PROBE = b"""import os
import tests.graphs.warm_module as warm
DAG_ID = 'warm-' + ('worker' if warm.IMPORTED_IN == os.getppid() else 'child')
"""


def test_modules_of_preloaded_packages_that_dag_files_import_are_imported_by_the_worker(
    tmp_path: Path,
) -> None:
    # the extractor preloads tests.graphs.preloaded_module: the package `tests` is preloaded
    root = write_tree(tmp_path / "v", {"probe.py": WARM_PROBE})
    result = extract_version(root, extractors=["tests.graphs.preloading_extractor:graphs"],
                             settings=ONE)
    assert [g.dag_id for _, g in result.graphs] == ["warm-worker"]


def test_a_module_the_version_provides_is_never_imported_by_the_worker(tmp_path: Path) -> None:
    # the version has a package `tests` of its own: its module runs in the child only
    root = write_tree(tmp_path / "v", {
        "probe.py": WARM_PROBE, "tests/__init__.py": b"", "tests/graphs/__init__.py": b"",
        "tests/graphs/warm_module.py": b"import os\nIMPORTED_IN = os.getpid()\n"})
    result = extract_version(root, extractors=["tests.graphs.preloading_extractor:graphs"],
                             settings=ONE)
    assert [g.dag_id for _, g in result.graphs] == ["warm-child"]


def test_a_module_the_worker_imports_later_is_hidden_from_a_version_that_provides_it(
    tmp_path: Path,
) -> None:
    # the worker lists what a version hides once, and again when its modules changed: here
    # the second version makes it import tests.graphs.warm_module, which the first provides
    provides = write_tree(tmp_path / "provides", {
        "probe.py": WARM_PROBE, "tests/__init__.py": b"", "tests/graphs/__init__.py": b"",
        "tests/graphs/warm_module.py": b"import os\nIMPORTED_IN = os.getpid()\n"})
    imports = write_tree(tmp_path / "imports", {"probe.py": WARM_PROBE})
    extractors = ["tests.graphs.preloading_extractor:graphs"]
    with pool_for(extractors) as pool:
        found = [[g.dag_id for _, g in extract_version(root, extractors=extractors,
                                                       settings=ONE, pool=pool).graphs]
                 for root in (provides, imports, provides)]
        assert pool.started == 1
    assert found == [["warm-child"], ["warm-worker"], ["warm-child"]]


def test_imported_names_reads_module_level_imports_without_running_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.py"
    path.write_text("import a.b, c\nfrom d.e import f\nfrom . import g\ntry:\n    import h\n"
                    "except ImportError:\n    import i\nif X:\n    import j\n"
                    "def later():\n    import k\nraise SystemExit('never run')\n")
    assert imported_names(path) == {"a.b", "c", "d.e", "h", "i", "j"}
    path.write_text("def broken(:\n")
    assert imported_names(path) == set()


def test_an_extractors_wording_of_a_dag_id_defined_twice(tmp_path: Path) -> None:
    files = repo_files(first=chain_dag("etl", ["a"]), second=chain_dag("etl", ["b"]),
                       third=chain_dag("{other}", ["a"]), fourth=chain_dag("{other}", ["b"]))
    root = write_tree(tmp_path / "v", files)
    result = extract_version(root, extractors=["tests.graphs.wording_extractor:graphs"])
    assert result.errors["second.py"] == (f"Duplicate etl in {root / 'second.py'}, "
                                          f"first in {root / 'first.py'}")
    # placeholders are filled once: a dag_id that looks like one stays as it is
    assert result.errors["third.py"] == (f"Duplicate {{other}} in {root / 'third.py'}, "
                                         f"first in {root / 'fourth.py'}")
    assert result.duplicate_message == "Duplicate {dag_id} in {file}, first in {other}"
