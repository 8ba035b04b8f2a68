"""The Airflow extraction benchmark's measuring side, run inside Airflow's venv by
:mod:`benchmarks.scenario_airflow` (``python benchmarks/airflow_side.py WORKDIR FILES REPEAT``).

Measures, on the same files in one run: Airflow's ``DagBag`` (in this process, Airflow
already imported, as a warm DAG processor has it) and dagfetch's extraction with the
``airflow`` extractor, on Airflow's shipped example DAGs and on a generated repository of
FILES DAG files importing Airflow; then one changed DAG file of the generated repository,
re-extracted through the graph pipeline (sync -> extract, whatever carry-over it does).
Prints one JSON object of samples (seconds) and counts.
"""

from __future__ import annotations

import json
import shutil
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


def extraction(root: Path) -> Any:
    from dagfetch.graphs.extract import extract_version

    return extract_version(root, extractors=["airflow"])


def one_changed(workdir: Path, source: Path, repeat: int) -> list[float]:
    """Sync + extract a file:// repository, change one DAG file, time the second extraction."""
    from dagfetch.graphs.pipeline import GraphPipeline
    from dagfetch.manifest import parse_manifest
    from dagfetch.workspace import Workspace

    samples = []
    for round_ in range(repeat):
        remote = workdir / f"remote-{round_}"
        shutil.copytree(source, remote)
        manifest = parse_manifest({"extractors": ["airflow"], "dag_repositories": {
            "gen": {"url": f"file://{remote}"}}})
        pipeline = GraphPipeline(Workspace(manifest, cache_root=workdir / f"cache-{round_}"))
        pipeline.sync()
        (remote / "dag_0000.py").write_text(DAG_FILE.format(n=0, edit="_edited"))
        [result] = pipeline.workspace.sync()
        start = time.perf_counter()
        pipeline.after_sync([result])
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    workdir, files, repeat = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    import airflow.example_dags

    examples = Path(airflow.example_dags.__file__).parent
    example_copy = workdir / "example_dags"
    shutil.copytree(examples, example_copy, ignore=shutil.ignore_patterns("__pycache__"))
    generated = generate(workdir / "generated", files)
    out: dict[str, Any] = {"files": files}
    for name, root in (("examples", example_copy), ("generated", generated)):
        bag_samples, bag = timed(lambda root=root: dagbag(root), repeat)
        ours_samples, ours = timed(lambda root=root: extraction(root), repeat)
        out[name] = {
            "dagbag": bag_samples, "dagfetch": ours_samples,
            "dagbag_dags": len(bag.dags), "dagfetch_dags": len(ours.graphs),
        }
    out["one_changed"] = one_changed(workdir / "pipeline", generated, repeat)
    print(json.dumps(out))


if __name__ == "__main__":  # the extraction worker is spawned: it imports this file again
    main()
