"""python -m benchmarks [--quick] [--only a,b] [--repeat N] [--out PATH] [--docs PATH]

The full run (no ``--quick``, no ``--only``) writes ``benchmarks/results/full.json`` and
regenerates the results section of ``docs/benchmarks.md`` from it (``benchmarks.report``);
other runs write ``benchmarks/results/latest.json`` and touch no docs unless ``--docs`` says so.
A scenario or a peer that fails is reported (in the output and the results' ``failures``),
never fatal to the run.

``--only faults`` runs the fault classes instead (benchmarks/faults, docs/reliability.md);
they are not part of the default run."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import Config, Row, Target, best_peers, failure_text, table, write_json
from benchmarks.process import byte_compile
from benchmarks.report import DOCS, update_docs

# scenario modules, each with a SCENARIOS mapping of name -> function(config)
MODULES = [
    "benchmarks.scenario_local",
    "benchmarks.scenario_s3",
    "benchmarks.scenario_graphs",
    "benchmarks.scenario_git",
    "benchmarks.scenario_lifecycle",
    "benchmarks.scenario_web",
    "benchmarks.scenario_team",
    "benchmarks.scenario_scale",
    "benchmarks.scenario_startup",
    "benchmarks.scenario_airflow",
    "benchmarks.scenario_extract",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--repeat", type=int, default=None, help="measured runs per variant")
    parser.add_argument("--out", type=Path, default=None, help="the results file (JSON)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="regenerate this file's results section (the full run: docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    full = not args.quick and not args.only
    out = args.out or Path("benchmarks/results", "full.json" if full else "latest.json")
    docs = args.docs or (DOCS if full else None)
    if args.only == "faults":
        from benchmarks.faults.runner import main as faults_main

        return faults_main(["--quick"] if args.quick else [], prog="python -m benchmarks")
    scenarios = {}
    for module in MODULES:
        scenarios.update(importlib.import_module(module).SCENARIOS)
    wanted = [s for s in args.only.split(",") if s] or list(scenarios)
    unknown = [s for s in wanted if s not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(scenarios)}")
    compiled = byte_compile()  # before any scenario: each times `dagfetch` processes
    rows: list[Row] = []
    targets: list[Target] = []
    repeat = args.repeat or (3 if args.quick else 5)
    run: dict[str, Any] = {
        "command": " ".join(
            ["python -m benchmarks", shlex.join(sys.argv[1:] if argv is None else argv)]
        ).strip(),
        "load average at start": [round(x, 2) for x in os.getloadavg()],
        "byte-compiled": compiled,
        "durations s": {},
        "failures": [],
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dagfetch-bench-") as tmp:
        for name in wanted:
            config = Config(quick=args.quick, repeat=repeat, warmup=1, workdir=Path(tmp) / name)
            config.workdir.mkdir(parents=True)
            print(f"running {name} ...", file=sys.stderr, flush=True)
            begun = time.monotonic()
            try:
                new_rows, new_targets = scenarios[name](config)
            except Exception as exc:  # reported, never fatal: the other scenarios still run
                traceback.print_exc(file=sys.stderr)
                config.failures.append({"what": "the whole scenario", "error": failure_text(exc)})
                new_rows, new_targets = [], []
            run["durations s"][name] = round(time.monotonic() - begun, 1)
            run["failures"].extend({"scenario": name, **f} for f in config.failures)
            rows.extend(new_rows)
            targets.extend(new_targets)
            run["elapsed s"] = round(time.monotonic() - started, 1)
            run["load average at end"] = [round(x, 2) for x in os.getloadavg()]
            # written after every scenario too, so a long run stopped half-way keeps its rows
            write_json(out, rows, check(targets, rows), Config(args.quick, repeat, 1, Path()), run)
    print(table(rows))
    results = check(targets, rows)
    best = best_peers(rows)
    if best:
        print("\nagainst the fastest peer of each row (dagfetch / peer):")
        for b in best:
            shown = "-" if b["ratio"] is None else f"{b['ratio']:.2f}x"
            print(f"  {b['scenario']:<22} {b['name']:<34} {shown:>8}  {b['best_peer']}")
    if results:
        print("\ntargets:")
        for r in results:
            print(f"  [{'met' if r['met'] else 'NOT MET'}] {r['target']}: {r['measured']}")
    for f in run["failures"]:
        print(f"  [FAILED] {f['scenario']}: {f['what']}: {f['error']}")
    written = write_json(out, rows, results, Config(args.quick, repeat, 1, Path()), run)
    print(f"\nresults written to {out} ({run['elapsed s']:.0f} s)", file=sys.stderr)
    if docs is not None:
        update_docs(docs, written, source=out)
        print(f"results section of {docs} regenerated from {out}", file=sys.stderr)
    return 0


def check(targets: list[Target], rows: list[Row]) -> list[dict[str, object]]:
    results = []
    for t in targets:
        by_name = {r.name: r for r in rows if r.scenario == t.scenario}
        try:
            met, detail = t.check(by_name)
        except KeyError as missing:  # a row the target compares was not measured (failed)
            met, detail = False, f"not measured: no row {missing}"
        results.append(
            {"scenario": t.scenario, "target": t.description, "met": met, "measured": detail}
        )
    return results


if __name__ == "__main__":
    sys.exit(main())
