"""A tiny stand-in for a scheduler's DAG objects: the same shape as Apache Airflow's
(``dag_id``, ``tasks``, each with ``task_id`` and ``downstream_task_ids``)."""


class DAG:
    def __init__(self, dag_id, schedule=None):
        self.dag_id = dag_id
        self.schedule = schedule
        self.tasks = []


class Task:
    def __init__(self, task_id, dag):
        self.task_id = task_id
        self.downstream_task_ids = set()
        dag.tasks.append(self)

    def __rshift__(self, other):
        self.downstream_task_ids.add(other.task_id)
        return other
