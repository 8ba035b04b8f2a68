"""The cost of isolating DAG files: a fresh fork of a warm worker per file against the
unisolated baseline, one interpreter importing every file in turn (what the worker did
before, when one file's changes to ``sys.path``, builtins or the stdlib reached the next).

Two repositories of trivial DAG files: ``plain`` (the files import nothing heavy) and
``heavy`` (each imports SQLAlchemy, standing in for Airflow): there the worker's ``preload``
imports it once, before forking, as the Airflow extractor does with Airflow.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

from benchmarks.harness import Config, Row, Target, ratio_target, row
from dagfetch.graphs.extract import extract_version
from dagfetch.graphs.worker.settings import WorkerSettings, default_workers

DAG = """{imports}
class Task:
    def __init__(self, task_id, downstream=()):
        self.task_id, self.downstream_task_ids = task_id, set(downstream)
class Dag:
    def __init__(self, dag_id, tasks):
        self.dag_id, self.tasks = dag_id, tasks
dag = Dag("dag_{n}", [Task("extract", ["load"]), Task("load")])
"""
# the baseline: every file imported by one interpreter, extracted as the worker does
UNISOLATED = """
import sys
from dagfetch.graphs.extract import dag_shaped_objects
from dagfetch.importing import dag_files, import_version
root = sys.argv[1]
for rel in dag_files(root):
    imported = import_version(root, [rel])
    for module in imported.modules.values():
        list(dag_shaped_objects(module))
"""


def _repository(root: Path, files: int, imports: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        (root / f"dag_{n:04}.py").write_text(DAG.format(imports=imports, n=n))
    return root


def _extract(root: Path, settings: WorkerSettings, files: int) -> None:
    result = extract_version(root, settings=settings)
    assert len(result.graphs) == files, result.errors


def _unisolated(root: Path) -> None:
    subprocess.run([sys.executable, "-c", UNISOLATED, str(root)], check=True)


def extract_isolation(config: Config) -> tuple[list[Row], list[Target]]:
    files = 10 if config.quick else 200
    scenario = f"extract isolation ({files} files)"
    rows: list[Row] = []
    for kind, imports, preload in (("plain", "", ()),
                                   ("heavy", "import sqlalchemy.orm", ("sqlalchemy.orm",))):
        root = _repository(config.workdir / f"extract-{kind}", files, imports)
        one = WorkerSettings(workers=1, preload=preload)
        every = WorkerSettings(workers=default_workers(), preload=preload)
        name = f"{kind}: fork per file, 1 worker"
        rows.append(row(scenario, name, partial(_extract, root, one, files), config,
                        extra={"files": files}))
        if not config.quick:
            rows.append(row(scenario, f"{kind}: fork per file, {every.workers} workers",
                            partial(_extract, root, every, files), config,
                            extra={"files": files}))
        if preload and not config.quick:  # every file imports it again: minutes in CI
            bare = WorkerSettings(workers=1)
            rows.append(row(scenario, f"{kind}: fork per file, 1 worker, no preload",
                            partial(_extract, root, bare, files), config,
                            extra={"files": files}))
        rows.append(row(scenario, f"{kind}: one interpreter, no isolation",
                        partial(_unisolated, root), config, baseline_for=name,
                        extra={"files": files}))
    targets = [
        # isolation costs a fork, a pipe and a JSON message per file: bounded, not free
        ratio_target(scenario, "plain: fork per file, 1 worker",
                     "plain: one interpreter, no isolation", 3.0),
        # with the heavy import preloaded, a fork per file costs about what one shared
        # interpreter costs
        ratio_target(scenario, "heavy: fork per file, 1 worker",
                     "heavy: one interpreter, no isolation", 2.0),
    ]
    return rows, targets


SCENARIOS = {"extract_isolation": extract_isolation}
