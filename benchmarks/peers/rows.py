"""Rows of the Airflow bundle peers, shared by the S3 and git scenarios: a cold initialize in
a process that already imported Airflow (beside dagfetch's Python API) and in a fresh process
(beside the ``dagfetch`` command), and refreshes of a bundle held by a long-lived process, as
Airflow's DAG processor runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Config, Row, measured_row
from benchmarks.peers.airflow import AirflowBundle, BundleRun

Requests = Callable[[Callable[[], object]], dict[str, int]]


def cold_rows(
    config: Config,
    scenario: str,
    label: str,
    bundle: Callable[[Path], AirflowBundle],
    new_dir: Callable[[], Path],
    requests: Requests,
    *,
    api: str,
    cli: str,
    per: int | None = None,
) -> list[Row]:
    """``<label>.initialize`` (baseline of ``api``) and ``<label>, whole process`` (of
    ``cli``), each run into a new storage folder. No warm-up run (a cold S3 bundle costs half
    a minute here); the first whole process is the one whose requests are counted."""
    in_process: list[tuple[float, float]] = []
    whole: list[tuple[float, float]] = []
    counted: dict[str, int] = {}
    size = 0
    for i in range(config.repeat):
        with bundle(new_dir()) as b:
            run = b.initialize()
        fresh = _whole_process(bundle(new_dir()), requests if i == 0 else None)
        if i == 0:
            counted = fresh[1]
        size = fresh[0].size
        in_process.append((run.wall, run.cpu))
        whole.append((fresh[0].wall, fresh[0].cpu))
    extra = {**counted, "bundle folder B": size}
    return [
        measured_row(
            scenario, f"{label}.initialize", in_process, baseline_for=api, extra=extra, per=per
        ),
        measured_row(
            scenario, f"{label}, whole process", whole, baseline_for=cli, extra=extra, per=per
        ),
    ]


def _whole_process(
    bundle: AirflowBundle, requests: Requests | None
) -> tuple[BundleRun, dict[str, int]]:
    """One ``run_once``, its requests counted when ``requests`` is given."""
    if requests is None:
        return bundle.run_once(), {}
    runs: list[BundleRun] = []
    counted = requests(lambda: runs.append(bundle.run_once()))
    return runs[0], counted


def refresh_row(
    config: Config,
    scenario: str,
    label: str,
    bundle: AirflowBundle,
    change: Callable[[], None] | None,
    requests: Requests,
    *,
    api: str,
) -> Row:
    """``<label>.refresh`` after ``change`` (if any), baseline of ``api``."""
    runs: list[tuple[float, float]] = []
    for i in range(config.warmup + config.repeat):
        if change is not None:
            change()
        run = bundle.refresh()
        if i >= config.warmup:
            runs.append((run.wall, run.cpu))
    if change is not None:
        change()
    return measured_row(
        scenario, f"{label}.refresh", runs, baseline_for=api, extra=requests(bundle.refresh)
    )
