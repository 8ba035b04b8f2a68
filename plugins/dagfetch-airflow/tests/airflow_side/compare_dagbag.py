"""Parse a folder with Airflow's DagBag and with dagfetch's ``airflow`` extractor; print both.

Usage: compare_dagbag.py FOLDER [FILES_PER_CHILD] (dagfetch's ``[extract] files_per_child``,
default 1). Prints one JSON line: for each side, dag_id -> {tasks: {id:
kind}, edges, file} and the files with import errors (paths relative to FOLDER).
"""

import json
import sys
from pathlib import Path

from dagfetch.graphs.extract import extract_version


def dagbag_side(root: Path) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    # Airflow's DAG processor puts a bundle's folder on sys.path (helper modules resolve there)
    sys.path.insert(0, str(root))
    try:
        bag = DagBag(str(root), bundle_path=root)
    finally:
        sys.path.remove(str(root))
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "tasks": {t.task_id: t.task_type for t in dag.tasks},
            "edges": sorted([t.task_id, d] for t in dag.tasks for d in t.downstream_task_ids),
            "file": str(Path(dag.fileloc).relative_to(root)),
            "groups": {t.task_id: t.task_group.group_id for t in dag.tasks
                       if t.task_group is not None and t.task_group.group_id},
        }
    errors = {str(Path(p).relative_to(root)) if Path(p).is_absolute() else p: text
              for p, text in bag.import_errors.items()}
    return {"dags": dags, "errors": errors}


def dagfetch_side(root: Path, files_per_child: int = 1) -> dict:
    from dagfetch.graphs.worker.settings import WorkerSettings

    result = extract_version(root, extractors=["airflow"],
                             settings=WorkerSettings(files_per_child=files_per_child))
    dags = {}
    for rel, graph in result.graphs:
        dags[graph.dag_id] = {
            "tasks": {t.task_id: t.kind for t in graph.tasks},
            "edges": sorted([e.upstream, e.downstream] for e in graph.edges),
            "file": rel,
            "groups": {t.task_id: t.attributes["task_group"] for t in graph.tasks
                       if "task_group" in t.attributes},
        }
    return {"dags": dags, "errors": dict(result.errors), "seconds": result.seconds}


if __name__ == "__main__":  # the extraction worker is spawned: it imports this file again
    root = Path(sys.argv[1]).resolve()
    per_child = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(json.dumps({"dagbag": dagbag_side(root), "dagfetch": dagfetch_side(root, per_child)}))
