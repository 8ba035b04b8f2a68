"""The manifest's ``[extract]`` table, and parallel workers giving what one worker gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagfetch.errors import ManifestError
from dagfetch.graphs.extract import extract_version
from dagfetch.graphs.worker.settings import WorkerSettings
from tests.graphs.dagfiles import chain_dag, repo_files
from tests.graphs.test_graph_extract import write_tree


def test_the_extract_table_is_checked_field_by_field() -> None:
    settings = WorkerSettings.from_table({"workers": 3, "file_timeout": "2m",
                                          "max_processes": 8, "environment": ["AIRFLOW__*"],
                                          "preload": ["json"]}, "dagfetch.toml")
    assert settings == WorkerSettings(3, 120.0, ("AIRFLOW__*",), 8, ("json",))
    bad = [({"workers": 0}, "extract.workers"), ({"file_timeout": "soon"}, "extract.file_timeout"),
           ({"environment": "HOME"}, "extract.environment"),
           ({"environment": ["DAGFETCH_CONN_*"]}, "extract.environment"),
           ({"max_processes": True}, "extract.max_processes"), ({"wrokers": 2}, "extract.wrokers")]
    for table, field in bad:
        with pytest.raises(ManifestError, match=rf"^dagfetch.toml: {field}: "):
            WorkerSettings.from_table(table, "dagfetch.toml")


def test_parallel_workers_give_what_one_worker_gives(tmp_path: Path) -> None:
    files = repo_files(**{f"dag{i}": chain_dag(f"dag{i}", ["a", "b"]) for i in range(6)},
                       broken=b"raise ValueError('no')\n",
                       twice=chain_dag("dag3", ["z"]))
    root = write_tree(tmp_path / "v", files)
    one = extract_version(root, settings=WorkerSettings(workers=1))
    three = extract_version(root, settings=WorkerSettings(workers=3))
    assert one.graphs == three.graphs and len(one.graphs) == 6
    assert sorted(one.errors) == sorted(three.errors) == ["broken.py", "twice.py"]


def test_an_extractors_preload_and_environment_reach_the_worker(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "v", {"a.py": b"DAG_ID = 'a'\n", "b.py": b"DAG_ID = 'b'\n"})
    result = extract_version(root, extractors=["tests.graphs.preloading_extractor:graphs"],
                             settings=WorkerSettings(workers=1))
    assert result.errors == {}
    assert {g.dag_id: {t.task_id for t in g.tasks} for _, g in result.graphs} == {
        "a": {"imported-in-worker", "env-from-extractor"},
        "b": {"imported-in-worker", "env-from-extractor"}}
