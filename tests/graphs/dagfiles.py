"""DAG files for the extraction and pipeline tests, shaped like Apache Airflow's (``dag_id``,
``tasks``, ``task_id``, ``downstream_task_ids``) without Airflow: a small ``lib/dagshape.py``
inside the repository provides the classes, so ``from lib... import`` is exercised too."""

from __future__ import annotations

DAGSHAPE = b'''
class Operator:
    def __init__(self, dag, task_id):
        self.task_id = task_id
        self.downstream_task_ids = set()
        dag.tasks.append(self)

    def __rshift__(self, other):
        self.downstream_task_ids.add(other.task_id)
        return other


class BashOperator(Operator):
    pass


class DAG:
    def __init__(self, dag_id):
        self.dag_id = dag_id
        self.tasks = []
'''


def chain_dag(dag_id: str, task_ids: list[str]) -> bytes:
    """A DAG file whose tasks run one after the other."""
    lines = ["from lib.dagshape import DAG, BashOperator", f"dag = DAG({dag_id!r})"]
    lines += [f"t{i} = BashOperator(dag, {t!r})" for i, t in enumerate(task_ids)]
    lines += [f"t{i} >> t{i + 1}" for i in range(len(task_ids) - 1)]
    return ("\n".join(lines) + "\n").encode()


def repo_files(**dags: bytes) -> dict[str, bytes]:
    return {"lib/__init__.py": b"", "lib/dagshape.py": DAGSHAPE,
            **{f"{name}.py": data for name, data in dags.items()}}
