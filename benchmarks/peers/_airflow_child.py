"""Runs inside Airflow's virtual environment (never imports dagfetch): builds one DAG bundle
and answers commands, one JSON line each way.

    python _airflow_child.py '<spec json>'          # serve: reads {"op": ...} lines on stdin
    python _airflow_child.py '<spec json>' --once   # initialize, report, exit

spec: {"classpath": "module:Class", "kwargs": {...}, "name": "bench"}.
Each answer: {"wall": s, "cpu": s, "version": str|None, "path": str}, where ``cpu`` is this
process's CPU time plus that of the child processes it waited for (git) during the call.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _call(bundle: Any, op: str) -> dict[str, Any]:
    start_wall, start_cpu = time.perf_counter(), _cpu()
    getattr(bundle, op)()
    wall, cpu = time.perf_counter() - start_wall, _cpu() - start_cpu
    version = bundle.get_current_version() if bundle.supports_versioning else None
    version = getattr(version, "version", version)  # a BundleVersion in newer providers
    return {
        "wall": wall,
        "cpu": cpu,
        "version": None if version is None else str(version),
        "path": str(bundle.path),
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    module, _, name = spec["classpath"].partition(":")
    bundle_class = getattr(importlib.import_module(module), name)
    bundle = bundle_class(name=spec.get("name", "bench"), **spec["kwargs"])
    if "--once" in sys.argv[2:]:
        print(json.dumps(_call(bundle, "initialize")), flush=True)
        return 0
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        op = json.loads(line)["op"]
        if op == "quit":
            break
        if op not in ("initialize", "refresh"):
            print(json.dumps({"error": f"unknown op {op!r}"}), flush=True)
            continue
        print(json.dumps(_call(bundle, op)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
