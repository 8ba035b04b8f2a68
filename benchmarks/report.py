"""The results section of docs/benchmarks.md, generated from one results file.

    python -m benchmarks.report benchmarks/results/full.json            # print it
    python -m benchmarks.report benchmarks/results/full.json --docs docs/benchmarks.md

The full ``python -m benchmarks`` run calls :func:`update_docs` itself. What is generated sits
between ``<!-- results:begin -->`` and ``<!-- results:end -->``; the prose around it is written
by hand. Per backend (S3, git) one table, a row per scenario, every peer side by side:
dagfetch through the Python API, the ``dagfetch`` command, Airflow's own bundle, the
command-line tools and libraries; each dagfetch cell gives its ratio to the fastest peer,
every cell its request count and client CPU. Then the scale curves, the targets (met or
not), the other scenarios and what failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt

DOCS = Path("docs/benchmarks.md")
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

# one table per backend: its scenarios, in order
BACKENDS = {
    "S3": ["s3 cold", "s3 no change", "s3 one changed"],
    "git": ["git cold", "git no change", "git one commit", "git disk"],
}
COLUMNS = ["dagfetch (Python API)", "`dagfetch` CLI", "Airflow bundle", "CLI tools, libraries"]
SCALES = {"S3": "s3 scale ", "git": "git scale "}


def column(name: str) -> str:
    """Which peer a row is, from its name."""
    if name.startswith("dagfetch CLI"):
        return COLUMNS[1]
    if name.startswith("dagfetch"):
        return COLUMNS[0]
    if name.startswith("Airflow"):
        return COLUMNS[2]
    return COLUMNS[3]


def requests(extra: dict[str, Any]) -> str:
    """``{"GET requests": 2001, "HEAD requests": 1}`` as ``2,001 GET + 1 HEAD``."""
    parts = [f"{v:,} {k.removesuffix(' requests')}" for k, v in extra.items()
             if k.endswith(" requests")]
    return " + ".join(parts)


def cpu(extra: dict[str, Any]) -> str:
    per = extra.get("client CPU us/object")
    total = extra.get("client CPU s")
    if total is None:
        return ""
    shown = f"CPU {total:.2f} s" + (f" ({per / 1000:.2f} ms/object)" if per is not None else "")
    server = extra.get("server CPU s")
    return shown + (f", server CPU {server:.2f} s" if server is not None else "")


def cell(r: dict[str, Any], best: dict[tuple[str, str], dict[str, Any]]) -> str:
    value = f"{r['name']}: **{fmt(r['median'], r['unit'])}**"
    b = best.get((r["scenario"], r["name"]))
    notes = []
    if b is not None and b["ratio"] is not None:
        notes.append(f"{b['ratio']:.2f}x {b['best_peer']}")
    notes.extend(n for n in (requests(r["extra"]), cpu(r["extra"])) if n)
    return value + (f" ({'; '.join(notes)})" if notes else "")


def backend_table(results: dict[str, Any], scenarios: list[str]) -> list[str]:
    best = {(b["scenario"], b["name"]): b for b in results["best_peers"]}
    lines = ["| scenario | " + " | ".join(COLUMNS) + " |", "| --- " * (len(COLUMNS) + 1) + "|"]
    for scenario in scenarios:
        rows = [r for r in results["rows"] if r["scenario"] == scenario]
        if not rows:
            continue
        cells = [
            "<br>".join(cell(r, best) for r in rows if column(r["name"]) == c) for c in COLUMNS
        ]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return lines


def scale_table(results: dict[str, Any], prefix: str) -> list[str]:
    """One line per size: every variant's median, the no-change check's ratio to the raw
    operation it cannot beat, and time per file (a check that grows with the listing only
    keeps a flat ratio)."""
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for r in results["rows"]:
        if r["scenario"].startswith(prefix):
            size = int(r["scenario"][len(prefix):].replace(",", ""))
            by_size.setdefault(size, {})[r["name"]] = r
    if not by_size:
        return []
    names: list[str] = []
    for variants in by_size.values():
        names.extend(n for n in variants if n not in names)
    lines = [
        "| files | " + " | ".join(names) + " | no-change / raw | no-change per file |",
        "| --- " * (len(names) + 3) + "|",
    ]
    for size in sorted(by_size):
        variants = by_size[size]
        shown = [fmt(variants[n]["median"], variants[n]["unit"]) if n in variants else ""
                 for n in names]
        check = variants.get("no-change sync")
        raw = next((v for v in variants.values() if v.get("baseline_for") == "no-change sync"),
                   None)
        ratio = f"{check['median'] / raw['median']:.2f}x" if check and raw else ""
        per = f"{check['median'] / size * 1e6:.0f} us" if check else ""
        lines.append(f"| {size:,} | " + " | ".join(shown) + f" | {ratio} | {per} |")
    return lines


def targets_table(results: dict[str, Any]) -> list[str]:
    lines = ["| scenario | target | measured | met? |", "| --- | --- | --- | --- |"]
    for t in results["targets"]:
        met = "yes" if t["met"] else "**no**"
        lines.append(f"| {t['scenario']} | {t['target']} | {t['measured']} | {met} |")
    return lines


def other_tables(results: dict[str, Any], shown: set[str]) -> list[str]:
    best = {(b["scenario"], b["name"]): b for b in results["best_peers"]}
    lines: list[str] = []
    scenarios = list(dict.fromkeys(r["scenario"] for r in results["rows"]))
    for scenario in scenarios:
        if scenario in shown:
            continue
        lines += ["", f"**{scenario}**", "", "| variant | median (min-max) | notes |",
                  "| --- | --- | --- |"]
        for r in (r for r in results["rows"] if r["scenario"] == scenario):
            spread = f"{fmt(r['min'], r['unit'])}-{fmt(r['max'], r['unit'])}"
            b = best.get((scenario, r["name"]))
            notes = [f"{b['ratio']:.2f}x {b['best_peer']}"] if b and b["ratio"] else []
            notes += [f"{k}={v}" for k, v in r["extra"].items()]
            lines.append(f"| {r['name']} | {fmt(r['median'], r['unit'])} ({spread}) | "
                         f"{', '.join(notes)} |")
    return lines


def render(results: dict[str, Any], source: Path | str = "") -> str:
    env = results.get("environment", {})
    load = results.get("load average at start"), results.get("load average at end")
    elapsed = results.get("elapsed s")
    head = [
        f"Generated by `benchmarks/report.py` from `{source}`"
        if source else "Generated by `benchmarks/report.py`",
        f"(`{results.get('command', 'python -m benchmarks')}`, {env.get('when', '?')}, "
        f"Python {env.get('python', '?')}, {env.get('cpus', '?')} CPUs; load average "
        f"{_load(load[0])} at the start, {_load(load[1])} at the end"
        + (f"; the run took {elapsed / 60:.0f} minutes" if elapsed else "")
        + f"; {results.get('repeat', '?')} measured runs per variant after a warm-up). "
        "Ratios are dagfetch / the fastest peer of the same scenario; requests are counted at "
        "the server; client CPU is this process and the processes it waited for.",
    ]
    out = [*head]
    shown: set[str] = set()
    for backend, scenarios in BACKENDS.items():
        table = backend_table(results, scenarios)
        if len(table) > 2:
            out += ["", f"### {backend}", "", *table]
            shown.update(scenarios)
    for backend, prefix in SCALES.items():
        table = scale_table(results, prefix)
        if table:
            out += ["", f"### Scale curves: {backend}", "", *table]
            shown.update(r["scenario"] for r in results["rows"]
                         if r["scenario"].startswith(prefix))
    if results.get("targets"):
        out += ["", "### Targets", "", *targets_table(results)]
    others = other_tables(results, shown)
    if others:
        out += ["", "### Other scenarios", *others]
    failures = results.get("failures") or []
    if failures:
        out += ["", "### Failed (left out of this run)", ""]
        out += [f"- {f['scenario']}: {f['what']}: `{f['error']}`" for f in failures]
    durations = results.get("durations s") or {}
    if durations:
        out += ["", "Duration per scenario: "
                + ", ".join(f"{k} {v / 60:.1f} min" for k, v in durations.items()) + "."]
    return "\n".join(out) + "\n"


def _load(values: Iterable[float] | None) -> str:
    return "?" if not values else " / ".join(f"{v:.1f}" for v in values)


def update_docs(docs: Path, results: dict[str, Any], source: Path | str = "") -> None:
    """Replace what lies between the markers of ``docs`` with :func:`render`'s tables."""
    text = docs.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{docs}: no {BEGIN} ... {END} section to regenerate")
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    tmp = docs.with_name(docs.name + ".tmp")
    tmp.write_text(f"{before}{BEGIN}\n{render(results, source)}{END}{after}")
    tmp.replace(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--docs", type=Path, default=None, help="regenerate this file's section")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    if args.docs is None:
        sys.stdout.write(render(results, args.results))
    else:
        update_docs(args.docs, results, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
