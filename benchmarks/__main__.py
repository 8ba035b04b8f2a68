"""python -m benchmarks [--quick] [--only a,b] [--repeat N] [--out PATH]

``--only faults`` runs the fault classes instead (benchmarks/faults, docs/reliability.md);
they are not part of the default run."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import Config, Row, Target, best_peers, table, write_json

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
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latest.json"))
    args = parser.parse_args(argv)
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
    rows: list[Row] = []
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="dagfetch-bench-") as tmp:
        repeat = args.repeat or (3 if args.quick else 5)
        for name in wanted:
            config = Config(quick=args.quick, repeat=repeat, warmup=1, workdir=Path(tmp) / name)
            config.workdir.mkdir(parents=True)
            print(f"running {name} ...", file=sys.stderr, flush=True)
            new_rows, new_targets = scenarios[name](config)
            rows.extend(new_rows)
            targets.extend(new_targets)
            # written after every scenario too, so a long run stopped half-way keeps its rows
            write_json(args.out, rows, check(targets, rows), Config(args.quick, repeat, 1, Path()))
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
    write_json(args.out, rows, results, Config(args.quick, repeat, 1, Path()))
    print(f"\nresults written to {args.out}", file=sys.stderr)
    return 0


def check(targets: list[Target], rows: list[Row]) -> list[dict[str, object]]:
    results = []
    for t in targets:
        by_name = {r.name: r for r in rows if r.scenario == t.scenario}
        met, detail = t.check(by_name)
        results.append(
            {"scenario": t.scenario, "target": t.description, "met": met, "measured": detail}
        )
    return results


if __name__ == "__main__":
    sys.exit(main())
