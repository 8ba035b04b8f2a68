"""The ``airflow`` extractor against Airflow's own parser (DagBag), in Airflow's venv."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow_env import AirflowEnv

pytestmark = pytest.mark.slow


def compare(airflow: AirflowEnv, root: Path,
            files_per_child: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    both = airflow.script("compare_dagbag", root, files_per_child, timeout=280)
    return both["dagbag"], both["dagfetch"]


#: a fork per file (the default), and the opt-in ``[extract] files_per_child``
PER_CHILD = pytest.mark.parametrize("files_per_child", [1, 50])


@PER_CHILD
def test_example_dags_give_every_dag_dagbag_finds_with_its_tasks_and_edges(
    airflow: AirflowEnv, example_dags: Path, files_per_child: int
) -> None:
    bag, ours = compare(airflow, example_dags, files_per_child)
    # the counts Airflow 3.3.2's shipped examples give: half of them never bound to a name
    assert len(bag["dags"]) == 90
    assert sum(len(d["tasks"]) for d in bag["dags"].values()) == 229
    assert sum(len(d["edges"]) for d in bag["dags"].values()) == 178
    assert sorted(ours["dags"]) == sorted(bag["dags"])
    for dag_id, expected in bag["dags"].items():
        got = ours["dags"][dag_id]
        assert got["tasks"] == expected["tasks"], dag_id
        assert got["edges"] == expected["edges"], dag_id
        assert got["file"] == expected["file"], dag_id
        assert got["groups"] == expected["groups"], dag_id
    assert sorted(ours["errors"]) == sorted(bag["errors"]) == []


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


HEADER = ("from airflow.sdk import DAG, dag, task\n"
          "from airflow.providers.standard.operators.empty import EmptyOperator\n")


@PER_CHILD
def test_unbound_dags_loops_factories_and_airflow_errors_match_dagbag(
    airflow: AirflowEnv, tmp_path: Path, files_per_child: int
) -> None:
    root = write(tmp_path / "repo", {
        # DAGs bound to no name: a `with` block, a loop, a @dag function called at module level
        "unbound.py": HEADER + (
            "with DAG('no_name'):\n    EmptyOperator(task_id='a') >> EmptyOperator(task_id='b')\n"
            "for i in range(3):\n    with DAG(f'loop_{i}'):\n        EmptyOperator(task_id='t')\n"
            "@dag(dag_id='decorated')\ndef pipeline():\n    @task\n    def one(): ...\n"
            "    @task\n    def two(): ...\n    one() >> two()\npipeline()\n"),
        # a factory in a helper module: the DAG counts for the file calling it
        "lib/__init__.py": "",
        "lib/factory.py": HEADER + (
            "def make(dag_id):\n    with DAG(dag_id) as d:\n        EmptyOperator(task_id='x')\n"
            "    return d\n"),
        "uses_factory.py": "# airflow dag\nfrom lib.factory import make\nmake('from_factory')\n",
        # a cycle: Airflow's message, the file an import error
        "cycle.py": HEADER + (
            "with DAG('cyclic'):\n    a = EmptyOperator(task_id='a')\n"
            "    b = EmptyOperator(task_id='b')\n    a >> b >> a\n"),
        # a file that registers a DAG and then fails: an import error, nothing leaks on
        "a_fails.py": HEADER + "with DAG('half_done'):\n    EmptyOperator(task_id='a')\n"
                               "raise RuntimeError('broken on purpose')\n",
        "b_after_failure.py": HEADER + "with DAG('after_failure'):\n"
                                       "    EmptyOperator(task_id='a')\n",
        # the same dag_id in two files: the later file is an import error, in Airflow's words,
        # and its other DAGs are kept
        "dup_1.py": HEADER + "with DAG('twice'):\n    EmptyOperator(task_id='a')\n",
        "dup_2.py": HEADER + "with DAG('twice'):\n    EmptyOperator(task_id='b')\n"
                             "with DAG('beside_twice'):\n    EmptyOperator(task_id='c')\n",
        # safe mode: a file not mentioning Airflow gives nothing, as in Airflow
        "plain.py": "X = 1\n",
    })
    bag, ours = compare(airflow, root, files_per_child)
    assert sorted(bag["dags"]) == ["after_failure", "beside_twice", "decorated", "from_factory",
                                   "loop_0", "loop_1", "loop_2", "no_name", "twice"]
    assert sorted(ours["dags"]) == sorted(bag["dags"])
    for dag_id, expected in bag["dags"].items():
        assert ours["dags"][dag_id]["tasks"] == expected["tasks"], dag_id
        assert ours["dags"][dag_id]["edges"] == expected["edges"], dag_id
    assert ours["dags"]["twice"]["file"] == bag["dags"]["twice"]["file"] == "dup_1.py"
    assert ours["dags"]["beside_twice"]["file"] == bag["dags"]["beside_twice"]["file"] \
        == "dup_2.py"
    assert ours["dags"]["from_factory"]["file"] == "uses_factory.py"
    assert sorted(ours["errors"]) == sorted(bag["errors"]) == ["a_fails.py", "cycle.py",
                                                               "dup_2.py"]
    message = "AirflowDagCycleException: Cycle detected in Dag: cyclic. Faulty task: b"
    assert bag["errors"]["cycle.py"] == message
    assert ours["errors"]["cycle.py"].rstrip().endswith(message)
    assert "broken on purpose" in ours["errors"]["a_fails.py"]
    # a dag_id defined twice: Airflow's own message (AirflowDagDuplicatedIdException's)
    assert bag["errors"]["dup_2.py"].startswith("AirflowDagDuplicatedIdException: Ignoring DAG "
                                                "twice from ")
    assert ours["errors"]["dup_2.py"] == bag["errors"]["dup_2.py"]


def test_manifest_extractors_airflow_through_the_cli(airflow: AirflowEnv, tmp_path: Path) -> None:
    """What a user types: `extractors = ["airflow"]` in the manifest, `dagfetch sync --extract`;
    the DAGs no name holds are recorded too (dag-shape would see only `bound`)."""
    repo = write(tmp_path / "repo", {"flows.py": HEADER + (
        "with DAG('unbound'):\n    EmptyOperator(task_id='a') >> EmptyOperator(task_id='b')\n"
        "with DAG('bound') as bound:\n    EmptyOperator(task_id='c')\n")})
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'extractors = ["airflow"]\n[dag_repositories.flows]\nurl = "{repo}"\n')
    base = [str(airflow.dagfetch), "--manifest", str(manifest), "--home", str(tmp_path / "home")]
    [row] = json.loads(airflow.run([*base, "sync", "--extract", "--json"]).stdout)
    assert (row["dags"], row["import_errors"]) == (2, 0)
    shown = airflow.run([*base, "graph", "show", "unbound", "--json"], check=False)
    assert shown.returncode == 0, shown.stderr
    assert "EmptyOperator" in shown.stdout


def test_forks_skip_airflows_pool_disposal_only_while_the_pools_hold_nothing(
    airflow: AirflowEnv,
) -> None:
    forks = airflow.script("fork_pools")
    # no connection yet: the child keeps the parent's engines and their (empty) pools
    for side in ("child", "parent"):
        for name in ("engine", "async_engine"):
            assert forks["empty"][side][name] == {"same_engine": True, "same_pool": True}
    # the sync engine holds a connection: Airflow's hook gave the child a new pool for it, and
    # only for it
    connected = forks["connected"]
    assert connected["child"]["engine"] == {"same_engine": True, "same_pool": False}
    assert connected["child"]["async_engine"] == {"same_engine": True, "same_pool": True}
    for name in ("engine", "async_engine"):
        assert connected["parent"][name] == {"same_engine": True, "same_pool": True}
