"""Graph extraction with the ``airflow`` extractor (plugins/dagfetch-airflow) beside Airflow's
own parser, ``DagBag``, on the same files: Airflow's shipped example DAGs and a generated
repository of DAG files importing Airflow (1,000 at full size).

Airflow lives in its own venv (``.venvs/airflow-3.3.2``, created by the plugin's tests), so the
measuring runs there (:mod:`benchmarks.airflow_side`) and this side turns its samples into
rows and targets. The targets compare warm with warm: dagfetch's workers kept from an
earlier extraction (as ``sync --watch`` and the library API keep them) against DagBag in a
process that imported Airflow; the cold rows show what a fresh process pays. Left out of
``--quick``: one full run parses thousands of files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Config, Row, Target, ratio_target

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venvs" / "airflow-3.3.2"
FILES = int(os.environ.get("DAGFETCH_BENCH_AIRFLOW_FILES", "1000"))


def airflow_scenarios(config: Config) -> tuple[list[Row], list[Target]]:
    if config.quick:
        print("airflow: left out of --quick (run it at full size)", file=sys.stderr)
        return [], []
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"airflow: skipped, no Airflow venv at {VENV} (the plugin's tests create it)",
              file=sys.stderr)
        return [], []
    home = config.workdir / "airflow-home"
    home.mkdir()
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    done = subprocess.run(
        [str(python), str(ROOT / "benchmarks" / "airflow_side.py"), str(config.workdir),
         str(FILES), str(config.repeat)],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    rows: list[Row] = []
    targets: list[Target] = []
    warm, cold = "dagfetch extract, warm workers", "dagfetch extract, workers started cold"
    bag = "DagBag (warm, Airflow imported)"
    load = {"load_average": data["load"]}
    for key, label in (("examples", "airflow example DAGs"),
                       ("generated", f"airflow {data['files']} generated DAG files")):
        part = data[key]
        rows.append(Row(label, warm, part["dagfetch"],
                        extra={"dags": part["dagfetch_dags"], "dagbag_dags": part["dagbag_dags"],
                               **load}))
        rows.append(Row(label, cold, part["dagfetch_cold"],
                        extra={"dags": part["dagfetch_cold_dags"]}))
        rows.append(Row(label, bag, part["dagbag"], baseline_for=warm))
        targets.append(ratio_target(label, warm, bag, 1.0, "full extraction <= 1.0x DagBag"))
    label = f"airflow {data['files']} generated DAG files"
    changed = data["one_changed"]
    one_warm = "one changed file: re-extraction by the same pipeline"
    rows.append(Row(label, one_warm, changed["warm"]))
    rows.append(Row(label, "one changed file: a new process (sync + extract)",
                    changed["fresh_process"]))
    targets.append(ratio_target(label, one_warm, bag, 0.05,
                                "one changed DAG file <= 0.05x a full DagBag parse"))
    targets.append(ratio_target(label, "one changed file: a new process (sync + extract)", bag,
                                0.05, "one changed DAG file, new process <= 0.05x a full "
                                "DagBag parse (informative)"))
    return rows, targets


SCENARIOS = {"airflow": airflow_scenarios}
