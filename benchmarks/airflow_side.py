"""The Airflow extraction benchmark's measuring side, run inside Airflow's venv by
:mod:`benchmarks.scenario_airflow` (``python benchmarks/airflow_side.py WORKDIR FILES REPEAT``).

Measures, on the same files in one run: Airflow's ``DagBag`` (in this process, Airflow
already imported, as a warm DAG processor has it) and dagfetch's extraction with the
``airflow`` extractor, on Airflow's shipped example DAGs and on a generated repository of
FILES DAG files importing Airflow, twice: with warm workers (a ``WorkerPool`` started before,
Airflow imported in it, as a long-lived process keeps them) and with workers started for the
call (what a fresh process pays). Then one changed DAG file of the generated repository,
re-extracted through the graph pipeline: by the same pipeline (warm workers, the previous
outcomes in memory) and by a new process (``GraphPipeline`` in a fresh interpreter: the
outcomes kept on disk, workers started cold). Prints one JSON object of samples (seconds)
and counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DAG_FILE = '''from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.bash import BashOperator

with DAG("generated_{n:04}", schedule=None, tags=["generated"]):
    start = EmptyOperator(task_id="start")
    steps = [BashOperator(task_id=f"step_{{i}}", bash_command="echo {n} {{i}}") for i in range(8)]
    start >> steps[0]
    for up, down in zip(steps, steps[1:]):
        up >> down
    steps[-1] >> EmptyOperator(task_id="end{edit}")
'''


def generate(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    for n in range(files):
        (root / f"dag_{n:04}.py").write_text(DAG_FILE.format(n=n, edit=""))
    return root


def timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return samples, result


def dagbag(root: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(root), bundle_path=root)


def extraction(root: Path, pool: Any = None) -> Any:
    from dagfetch.graphs.extract import extract_version

    return extract_version(root, extractors=["airflow"], pool=pool)


def warm_pool() -> Any:
    """Workers for the ``airflow`` extractor with the default settings, started and warm."""
    from dagfetch.graphs.extract import resolve_extractors
    from dagfetch.graphs.worker.pool import WorkerPool
    from dagfetch.graphs.worker.settings import WorkerSettings

    return WorkerPool(resolve_extractors(["airflow"]), WorkerSettings())


FRESH_PROCESS = """
import sys, time
from pathlib import Path
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
remote, cache = sys.argv[1], Path(sys.argv[2])
manifest = parse_manifest({"extractors": ["airflow"], "dag_repositories": {
    "gen": {"url": f"file://{remote}"}}})
with GraphPipeline(Workspace(manifest, cache_root=cache)) as pipeline:
    [outcome] = pipeline.sync()
    print(outcome.extraction.recorded if outcome.extraction else None)
"""


def one_changed(workdir: Path, source: Path, repeat: int) -> dict[str, Any]:
    """Sync + extract a file:// repository, change one DAG file, time the second extraction:
    in the same pipeline (``after_sync`` only), and by a whole new process (sync included,
    which finds the one change)."""
    from dagfetch.graphs.pipeline import GraphPipeline
    from dagfetch.manifest import parse_manifest
    from dagfetch.workspace import Workspace

    warm: list[float] = []
    fresh: list[float] = []
    for round_ in range(repeat):
        remote = workdir / f"remote-{round_}"
        shutil.copytree(source, remote)
        manifest = parse_manifest({"extractors": ["airflow"], "dag_repositories": {
            "gen": {"url": f"file://{remote}"}}})
        cache = workdir / f"cache-{round_}"
        with GraphPipeline(Workspace(manifest, cache_root=cache)) as pipeline:
            pipeline.sync()
            (remote / "dag_0000.py").write_text(DAG_FILE.format(n=0, edit="_edited"))
            [result] = pipeline.workspace.sync()
            start = time.perf_counter()
            pipeline.after_sync([result])
            warm.append(time.perf_counter() - start)
        (remote / "dag_0001.py").write_text(DAG_FILE.format(n=1, edit="_edited"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(remote), str(cache)],
                       check=True, capture_output=True)
        fresh.append(time.perf_counter() - start)
    return {"warm": warm, "fresh_process": fresh}


def main() -> None:
    workdir, files, repeat = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    import airflow.example_dags

    examples = Path(airflow.example_dags.__file__).parent
    example_copy = workdir / "example_dags"
    shutil.copytree(examples, example_copy, ignore=shutil.ignore_patterns("__pycache__"))
    generated = generate(workdir / "generated", files)
    out: dict[str, Any] = {"files": files, "load": [os.getloadavg()[0]]}
    pool = warm_pool()
    extraction(example_copy, pool)  # starts the workers: Airflow imported in each
    for name, root in (("examples", example_copy), ("generated", generated)):
        bag_samples, bag = timed(lambda root=root: dagbag(root), repeat)
        ours_samples, ours = timed(lambda root=root: extraction(root, pool), repeat)
        cold_samples, cold = timed(lambda root=root: extraction(root), repeat)
        out[name] = {
            "dagbag": bag_samples, "dagfetch": ours_samples, "dagfetch_cold": cold_samples,
            "dagbag_dags": len(bag.dags), "dagfetch_dags": len(ours.graphs),
            "dagfetch_cold_dags": len(cold.graphs),
        }
        out["load"].append(os.getloadavg()[0])
    pool.close()
    out["one_changed"] = one_changed(workdir / "pipeline", generated, repeat)
    out["load"].append(os.getloadavg()[0])
    print(json.dumps(out))


if __name__ == "__main__":  # the extraction worker is spawned: it imports this file again
    main()
