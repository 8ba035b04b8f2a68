"""CI runs the benchmark harness at its --quick size, so it never rots. Speed targets are
checked by the benchmarks themselves (docs/benchmarks.md), never by timing tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import ROOT


def postgres_answers() -> bool:
    import sqlalchemy as sa

    from benchmarks.scenario_graphs import POSTGRES

    try:
        sa.create_engine(POSTGRES).connect().close()
    except sa.exc.OperationalError:
        return False
    return True


def requests_of(extra: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in extra.items() if k.endswith("requests")}


@pytest.mark.timeout(600)  # as long as the run's own limit below: a loaded machine is slow
def test_quick_benchmarks_run_and_report_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--repeat", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    scenarios = {row["scenario"] for row in results["rows"]}
    expected = [
        "materialize",
        "disk",
        "lookup",
        "memory",
        "s3 cold",
        "s3 no change",
        "s3 one changed",
        "graphs sqlite",
        "git cold",
        "git no change",
        "git one commit",
        "graph lifecycle",
        "cli start-up",
        "cli no-change, local",
        "cli no-change, git",
        "s3 scale 200",
        "git scale 200",
    ]
    if postgres_answers():
        expected.append("graphs postgres")
    for scenario in expected:
        assert scenario in scenarios, scenario
    # the request counts the issue asks for are part of the report
    no_change = next(
        r
        for r in results["rows"]
        if r["scenario"] == "s3 no change" and r["name"] == "dagfetch sync"
    )
    assert requests_of(no_change["extra"]) == {"GET requests": 1}
    git_rows = {(r["scenario"], r["name"]): requests_of(r["extra"]) for r in results["rows"]}
    # a no-change git sync is one ref lookup: one upload-pack request to the daemon
    assert git_rows[("git no change", "dagfetch sync")] == {"upload-pack requests": 1}
    assert git_rows[("git cold", "git clone --depth 1")] == {"upload-pack requests": 1}
    assert all(t["measured"] for t in results["targets"])
    # every dagfetch row with peers is reported against the fastest of them
    best = {(b["scenario"], b["name"]) for b in results["best_peers"]}
    assert ("s3 no change", "dagfetch sync") in best
    assert ("git cold", "dagfetch cold sync") in best
    assert "targets:" in done.stdout
