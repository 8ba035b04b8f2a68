"""Parse a DagfetchBundle the way Airflow's DAG processor does; print what it found.

Usage: bundle_parse.py NAME [--version V] [--refresh] [--hold SECONDS]. The bundle comes from
``[dag_processor] dag_bundle_config_list`` (the environment sets it) through Airflow's bundle
manager; each DAG file of ``bundle.path`` goes through the DAG processor's own per-file parse
(``airflow.dag_processing.processor._parse_file``). Prints one JSON line.
"""

import argparse
import json
import time
from pathlib import Path

import structlog
from airflow.dag_processing.bundles.base import unpack_bundle_version
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file
from airflow.utils.file import list_py_file_paths

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--version")
parser.add_argument("--refresh", action="store_true")
parser.add_argument("--hold", type=float, default=0.0)
args = parser.parse_args()

try:
    bundle = DagBundlesManager().get_bundle(args.name, version=args.version)
    bundle.initialize()
    if args.refresh:
        bundle.refresh()
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0) from None

root = Path(bundle.path)
dags, errors = {}, {}
log = structlog.get_logger()
for file in list_py_file_paths(str(root)):
    result = _parse_file(DagFileParseRequest(file=file, bundle_path=root, bundle_name=args.name),
                         log)
    for dag in result.serialized_dags:
        dags[dag.dag_id] = sorted(t["__var"]["task_id"] for t in dag.data["dag"]["tasks"])
    errors.update(result.import_errors or {})
version, _ = unpack_bundle_version(bundle.get_current_version(), bundle)
pins = bundle.workspace.cache.pins(args.name)
if args.hold:
    print(json.dumps({"holding": version}), flush=True)
    time.sleep(args.hold)
print(json.dumps({"version": version, "path": str(root), "dags": dags, "errors": errors,
                  "pins": pins, "supports_versioning": bundle.supports_versioning}))
