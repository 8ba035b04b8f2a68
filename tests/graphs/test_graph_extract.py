"""Extraction runs DAG files in a worker process, one file at a time under a time limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagfetch._entrypoints import EntryPoint
from dagfetch.errors import ConfigError
from dagfetch.graphs import Graph, Task
from dagfetch.graphs import extract as extract_mod
from dagfetch.graphs.extract import extract_version
from tests.graphs.dagfiles import chain_dag, repo_files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def test_airflow_shaped_dags_with_helpers_from_the_version(tmp_path: Path) -> None:
    files = repo_files(etl=b"from lib.names import STEPS\n" + chain_dag("etl", ["a"]).replace(
        b"t0 = BashOperator(dag, 'a')",
        b"ops = [BashOperator(dag, s) for s in STEPS]\nfor x, y in zip(ops, ops[1:]):\n    x >> y"))
    files["lib/names.py"] = b"STEPS = ['extract', 'transform', 'load']\n"
    result = extract_version(write_tree(tmp_path / "v1", files))
    assert result.errors == {}
    assert result.files == 1  # lib/ is a package: helpers, not DAG files
    assert result.graphs == ((
        "etl.py",
        Graph.of("etl", [Task(t, "BashOperator") for t in ("extract", "transform", "load")],
                 [("extract", "transform"), ("transform", "load")]),
    ),)


def test_failures_become_import_errors_and_never_stop_other_files(tmp_path: Path) -> None:
    files = repo_files(
        a_broken=b"from lib.dagshape import DAG\nraise ValueError('bad config')\n",
        b_slow=b"import time\ntime.sleep(60)\n",
        c_crash=b"import os\nos._exit(7)\n",
        d_exit=b"import sys\nsys.exit(3)\n",
        e_loud=b"print('x' * 100000)\n" + chain_dag("loud", ["p", "q"]),
        z_good=chain_dag("good", ["one", "two"]),
    )
    result = extract_version(write_tree(tmp_path / "v", files), file_timeout=1.5)
    assert sorted(result.errors) == ["a_broken.py", "b_slow.py", "c_crash.py", "d_exit.py"]
    assert "ValueError: bad config" in result.errors["a_broken.py"]
    assert "a_broken.py" in result.errors["a_broken.py"]  # a real traceback, with the file
    assert "timed out" in result.errors["b_slow.py"] and "1.5s" in result.errors["b_slow.py"]
    assert "exit code 7" in result.errors["c_crash.py"]
    assert "SystemExit" in result.errors["d_exit.py"]
    assert [g.dag_id for _, g in result.graphs] == ["loud", "good"]
    assert result.seconds < 20


def test_dag_code_never_runs_in_the_calling_process(tmp_path: Path) -> None:
    files = repo_files(etl=b"import os\nos.environ['DAGFETCH_TEST_RAN_HERE'] = '1'\n"
                           + chain_dag("etl", ["a"]))
    result = extract_version(write_tree(tmp_path / "v", files))
    assert [g.dag_id for _, g in result.graphs] == ["etl"]
    assert "DAGFETCH_TEST_RAN_HERE" not in os.environ


def test_two_versions_never_share_helper_modules(tmp_path: Path) -> None:
    graphs = []
    for version, steps in (("v1", ["a", "b"]), ("v2", ["a", "b", "c"])):
        files = repo_files(etl=b"from lib.names import STEPS\nfrom lib.dagshape import DAG, "
                               b"Operator\ndag = DAG('etl')\nfor s in STEPS:\n"
                               b"    Operator(dag, s)\n")
        files["lib/names.py"] = f"STEPS = {steps!r}\n".encode()
        graphs.append(extract_version(write_tree(tmp_path / version, files)).graphs[0][1])
    assert [t.task_id for t in graphs[0].tasks] == ["a", "b"]
    assert [t.task_id for t in graphs[1].tasks] == ["a", "b", "c"]


def test_a_dag_id_defined_twice_is_an_import_error_of_the_second_file(tmp_path: Path) -> None:
    files = repo_files(first=chain_dag("etl", ["a"]), second=chain_dag("etl", ["b"]))
    result = extract_version(write_tree(tmp_path / "v", files))
    assert [(p, g.dag_id) for p, g in result.graphs] == [("first.py", "etl")]
    assert "already defined in first.py" in result.errors["second.py"]


def test_a_file_defining_a_dag_id_again_keeps_its_other_dags(tmp_path: Path) -> None:
    """As Airflow's DagBag: the duplicate is left out, the file is an import error, and the
    DAGs it defines besides stay recorded."""
    files = repo_files(first=chain_dag("etl", ["a"]))
    files["second.py"] = (b"from lib.dagshape import DAG, BashOperator\n"
                          b"again = DAG('etl')\nb = BashOperator(again, 'b')\n"
                          b"report = DAG('report')\nc = BashOperator(report, 'c')\n")
    result = extract_version(write_tree(tmp_path / "v", files))
    assert sorted((p, g.dag_id) for p, g in result.graphs) == [("first.py", "etl"),
                                                              ("second.py", "report")]
    assert "already defined in first.py" in result.errors["second.py"]


def test_a_plugin_extractor_from_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = EntryPoint(name="workflows", value="tests.graphs.plugin_extractor:workflows",
                        group=extract_mod.GROUP)
    monkeypatch.setattr(extract_mod, "entry_points", lambda group: [plugin])
    assert extract_mod.available_extractors()["workflows"] == plugin.value
    files = {"flow.py": b"FLOW = {'kind': 'workflow', 'name': 'nightly', "
                        b"'steps': {'fetch': [], 'report': ['fetch']}}\n",
             **repo_files(etl=chain_dag("etl", ["a"]))}
    result = extract_version(write_tree(tmp_path / "v", files),
                             extractors=["workflows", "dag-shape"])
    assert {g.dag_id: [(e.upstream, e.downstream) for e in g.edges] for _, g in result.graphs} \
        == {"nightly": [("fetch", "report")], "etl": []}


def test_an_unknown_extractor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no graph extractor 'nope' \(known: (.*, )?dag-shape"):
        extract_mod.resolve_extractors(["nope"])


def test_known_secrets_are_masked_in_recorded_tracebacks(tmp_path: Path) -> None:
    from dagfetch.redact import masker

    masker.add("hunter2-very-secret")
    files = repo_files(leaky=b"raise RuntimeError('login failed for hunter2-very-secret')\n")
    result = extract_version(write_tree(tmp_path / "v", files))
    assert "hunter2-very-secret" not in result.errors["leaky.py"]
    assert "login failed for ***" in result.errors["leaky.py"]
