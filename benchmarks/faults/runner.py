"""Run fault classes, count what survived, write the table and the results.

    python -m benchmarks.faults [--quick] [--only a,b] [--attempts N] [--first N] [--out PATH]
                                [--no-docs]

Every module of this package that registers classes is imported (:func:`load_classes`), so a
new group of classes is one module with ``@fault_class`` functions and nothing else to edit.
The full run (not ``--quick``) rewrites the table in docs/reliability.md between its markers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

import benchmarks.faults as faults
from benchmarks.faults import REGISTRY, FaultClass, Outcome

NOT_CLASSES = {"support", "runner", "__main__"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"


def load_classes() -> dict[str, FaultClass]:
    """Import :data:`benchmarks.faults.MODULES` and every module of the package."""
    names = list(faults.MODULES)
    names += [f"benchmarks.faults.{m.name}" for m in pkgutil.iter_modules(faults.__path__)
              if m.name not in NOT_CLASSES]
    for name in names:
        importlib.import_module(name)
    return dict(REGISTRY)


@attrs.define
class ClassResult:
    fault: FaultClass
    attempts: int = 0
    survived: int = 0
    lost_data: int = 0
    partial_versions: int = 0
    escapes: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    failures: list[str] = attrs.field(factory=list)  # "attempt N: what broke"

    @classmethod
    def from_json(cls, fault: FaultClass, data: dict[str, Any]) -> ClassResult:
        return cls(fault, data["attempts"], data["survived"], data["lost_data"],
                   data["partial_versions"], data["escapes"], data["seconds"],
                   data["skipped"], list(data["failures"]))

    @property
    def failed(self) -> int:
        return self.attempts - self.survived

    def add(self, attempt: int, outcome: Outcome) -> None:
        self.attempts += 1
        self.survived += outcome.survived
        self.lost_data += outcome.lost_data
        self.partial_versions += outcome.partial_version
        self.escapes += outcome.escaped
        if not outcome.survived:
            self.failures.append(f"attempt {attempt}: {outcome.detail}")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.fault.name, "group": self.fault.group,
            "description": self.fault.description, "attempts": self.attempts,
            "survived": self.survived, "failed": self.failed, "lost_data": self.lost_data,
            "partial_versions": self.partial_versions, "escapes": self.escapes,
            "seconds": round(self.seconds, 2), "skipped": self.skipped,
            "failures": self.failures[:20],
        }


def attempt_once(fault: FaultClass, scratch: Path, number: int) -> Outcome:
    """One attempt; an exception out of the class is a failure (with its last line)."""
    try:
        return fault.run(scratch, number)
    except Exception as exc:  # a class that crashes is a failed attempt, not the run's end
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(False, detail=f"{type(exc).__name__}: {exc} "
                       f"({Path(where.filename).name}:{where.lineno})")


def run_class(fault: FaultClass, attempts: int, *, first: int = 0) -> ClassResult:
    result = ClassResult(fault)
    if fault.needs_root and os.geteuid() != 0:
        result.skipped = f"needs root: {fault.needs_root}"
        return result
    started = time.monotonic()
    for number in range(first, first + attempts):
        with tempfile.TemporaryDirectory(prefix=f"dagfetch-fault-{fault.name}-") as tmp:
            result.add(number, attempt_once(fault, Path(tmp), number))
    result.seconds = time.monotonic() - started
    return result


def table(results: Sequence[ClassResult]) -> str:
    lines = ["| class | group | what happens | attempts | survived | failed | lost data | "
             "partial versions | escapes |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if r.skipped:
            lines.append(f"| `{r.fault.name}` | {r.fault.group} | {r.fault.description} | "
                         f"skipped ({r.skipped}) | | | | | |")
            continue
        lines.append(f"| `{r.fault.name}` | {r.fault.group} | {r.fault.description} | "
                     f"{r.attempts} | {r.survived} | {r.failed} | {r.lost_data} | "
                     f"{r.partial_versions} | {r.escapes} |")
    return "\n".join(lines)


def write_docs(results: Sequence[ClassResult], docs: Path = DOCS) -> None:
    """Replace the table between the markers of docs/reliability.md."""
    text = docs.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{docs}: no {BEGIN} ... {END} markers to write the table between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    stamp = (f"_{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores, "
             f"`python -m benchmarks --only faults`_")
    docs.write_text(f"{head}{BEGIN}\n{stamp}\n\n{table(results)}\n{END}{tail}")


def write_json(path: Path, results: Sequence[ClassResult], *, quick: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"quick": quick, "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "classes": [r.to_json() for r in results]}
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None, *, prog: str = "python -m benchmarks.faults") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="each class's quick_attempts")
    parser.add_argument("--only", default="", help="comma-separated class names or groups")
    parser.add_argument("--attempts", type=int, default=None, help="attempts of every class")
    parser.add_argument("--first", type=int, default=0, help="number of the first attempt")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/reliability.md")
    parser.add_argument("--docs-from", type=Path, nargs="+", default=None, metavar="JSON",
                        help="write the docs table from results files of earlier (parallel) "
                        "runs instead of running anything")
    args = parser.parse_args(argv)
    classes = load_classes()
    if args.docs_from:
        loaded = [ClassResult.from_json(classes[c["name"]], c)
                  for path in args.docs_from for c in json.loads(path.read_text())["classes"]]
        order = list(classes)
        loaded.sort(key=lambda r: order.index(r.fault.name))
        write_docs(loaded)
        write_json(args.out or Path("benchmarks/results/full-faults.json"), loaded, quick=False)
        print(table(loaded))
        return 0
    wanted = [w for w in args.only.split(",") if w]
    chosen = [c for c in classes.values()
              if not wanted or c.name in wanted or c.group in wanted]
    unknown = [w for w in wanted if w not in classes
               and w not in {c.group for c in classes.values()}]
    if unknown:
        parser.error(f"unknown fault class(es) {unknown}; known: {', '.join(classes)}")
    out = args.out or Path("benchmarks/results") / ("faults-quick.json" if args.quick
                                                     else "full-faults.json")
    results = []
    for fault in chosen:
        attempts = args.attempts or (fault.quick_attempts if args.quick else fault.attempts)
        print(f"fault class {fault.name}: {attempts} attempts ...", file=sys.stderr, flush=True)
        result = run_class(fault, attempts, first=args.first)
        print(f"  {result.survived}/{result.attempts} survived in {result.seconds:.0f} s",
              file=sys.stderr, flush=True)
        for failure in result.failures[:5]:
            print(f"  FAILED {failure}", file=sys.stderr)
        results.append(result)
        write_json(out, results, quick=args.quick)  # a long run keeps what it measured
    print(table(results))
    if not args.quick and not args.no_docs and not wanted and args.attempts is None:
        write_docs(results)
    print(f"\nresults written to {out}", file=sys.stderr)
    return 0 if all(r.failed == 0 for r in results) else 1
