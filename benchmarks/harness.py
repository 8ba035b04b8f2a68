"""Timing, repetition, ratios and reporting shared by every scenario."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs

T = TypeVar("T")


@attrs.define
class Row:
    """One measured thing: a scenario's dagfetch variant or one of its baselines."""

    scenario: str
    name: str
    samples: list[float]
    unit: str = "s"
    baseline_for: str | None = None  # set on baselines: the dagfetch row they compare with
    also_for: tuple[str, ...] = ()  # further dagfetch rows it is the baseline of
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "samples": self.samples,
            "baseline_for": self.baseline_for,
            "also_for": list(self.also_for),
            "extra": self.extra,
        }


@attrs.define
class Target:
    """A goal stated as a ratio of two rows' medians (``row / baseline <= limit``), or a
    check on one row's ``extra`` values."""

    scenario: str
    description: str
    check: Callable[[dict[str, Row]], tuple[bool, str]]


@attrs.define
class Config:
    quick: bool
    repeat: int
    warmup: int
    workdir: Path
    # what failed in this scenario and was left out (a peer that did not install, a variant
    # that crashed): reported in the results, never fatal to the run
    failures: list[dict[str, str]] = attrs.field(factory=list)


def attempt(config: Config, what: str, fn: Callable[[], T], default: T) -> T:
    """Run one part of a scenario that may fail on its own (a peer, a whole-process variant):
    a failure is printed, kept in ``config.failures`` (and so in the results file) and
    ``default`` returned, so one broken peer does not lose the rest of the run."""
    try:
        return fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        config.failures.append({"what": what, "error": failure_text(exc)})
        return default


def failure_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:600]


def measure(
    fn: Callable[[], Any], *, repeat: int, warmup: int = 1, setup: Callable[[], Any] | None = None
) -> list[float]:
    """Run ``fn`` ``warmup`` times unmeasured, then ``repeat`` times; ``setup`` runs before
    each call, outside the timing."""
    samples = []
    for i in range(warmup + repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            samples.append(elapsed)
    return samples


Counter = Callable[[Callable[[], Any]], dict[str, Any]]


def row(
    scenario: str,
    name: str,
    fn: Callable[[], Any],
    config: Config,
    *,
    setup: Callable[[], Any] | None = None,
    baseline_for: str | None = None,
    also_for: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    count: Counter | None = None,
) -> Row:
    """Measure ``fn``; with ``count``, run it once more (after ``setup``) through ``count``,
    which returns what that run asked of the server (requests, SQL statements)."""
    samples = measure(fn, repeat=config.repeat, warmup=config.warmup, setup=setup)
    info = dict(extra or {})
    if count is not None:
        if setup is not None:
            setup()
        info.update(count(fn))
    return Row(scenario, name, samples, baseline_for=baseline_for, also_for=also_for, extra=info)


def measured_row(
    scenario: str,
    name: str,
    runs: list[tuple[float, float]],
    *,
    baseline_for: str | None = None,
    extra: dict[str, Any] | None = None,
    per: int | None = None,
) -> Row:
    """A row of samples timed elsewhere (inside a peer's own process): ``runs`` holds
    ``(wall, client CPU)`` pairs; the median CPU goes into ``extra`` (per item with ``per``)."""
    info = dict(extra or {})
    info.update(cpu_extra([cpu for _, cpu in runs], per))
    return Row(scenario, name, [wall for wall, _ in runs], baseline_for=baseline_for, extra=info)


def cpu_extra(
    cpu: list[float], per: int | None = None, server: list[float] | None = None
) -> dict[str, Any]:
    """``client CPU`` (median seconds), and per object with ``per``: CPU survives a slow
    server where wall time does not; with ``server``, the test server's CPU in those runs
    (on a 2-core machine its work competes with the client's for the same cores)."""
    median = statistics.median(cpu)
    info: dict[str, Any] = {"client CPU s": round(median, 3)}
    if per:
        info["client CPU us/object"] = round(median / per * 1e6, 1)
    if server:
        info["server CPU s"] = round(statistics.median(server), 3)
    return info


def best_peers(rows: list[Row]) -> list[dict[str, Any]]:
    """For every dagfetch row that has baselines, the fastest of them and the ratio to it."""
    out = []
    for ours in rows:
        if ours.baseline_for is not None:
            continue
        peers = [
            r
            for r in rows
            if r.scenario == ours.scenario
            and (r.baseline_for == ours.name or ours.name in r.also_for)
        ]
        if not peers:
            continue
        best = min(peers, key=lambda r: r.median)
        out.append(
            {
                "scenario": ours.scenario,
                "name": ours.name,
                "best_peer": best.name,
                "ratio": ours.median / best.median if best.median else None,
            }
        )
    return out


def ratio(rows: dict[str, Row], name: str, baseline: str) -> float:
    return rows[name].median / rows[baseline].median


def ratio_target(
    scenario: str, name: str, baseline: str, limit: float, description: str | None = None
) -> Target:
    def check(rows: dict[str, Row]) -> tuple[bool, str]:
        value = ratio(rows, name, baseline)
        return value <= limit, f"{value:.2f}x (target <= {limit}x)"

    return Target(scenario, description or f"{name} <= {limit}x {baseline}", check)


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 10 else f"{value:.2f} s"
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    if unit == "us":
        return f"{value:.1f} us"
    return f"{value:g} {unit}"


def table(rows: list[Row]) -> str:
    by_name = {(r.scenario, r.name): r for r in rows}
    lines = [
        f"{'scenario':<22} {'variant':<34} {'median':>12} {'min-max':>24} {'ratio':>8}  notes",
        "-" * 120,
    ]
    for r in rows:
        spread = f"{fmt(min(r.samples), r.unit)} - {fmt(max(r.samples), r.unit)}"
        rel = ""
        if r.baseline_for is not None and (r.scenario, r.baseline_for) in by_name:
            ours = by_name[(r.scenario, r.baseline_for)].median
            rel = f"{ours / r.median:.2f}x" if r.median else "-"
        notes = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        lines.append(
            f"{r.scenario:<22} {r.name:<34} {fmt(r.median, r.unit):>12} "
            f"{spread:>24} {rel:>8}  {notes}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(
    path: Path,
    rows: list[Row],
    targets: list[dict[str, Any]],
    config: Config,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the results file; ``run`` adds what the run itself recorded (the command, each
    scenario's duration, the load average, failures). Returns what was written."""
    results = {
        "environment": environment(),
        "quick": config.quick,
        "repeat": config.repeat,
        **(run or {}),
        "rows": [r.to_json() for r in rows],
        "targets": targets,
        "best_peers": best_peers(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)
    return results
