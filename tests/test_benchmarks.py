"""CI runs the benchmark harness at its --quick size, so it never rots. Speed targets are
checked by the benchmarks themselves (docs/benchmarks.md), never by timing tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import render
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
    assert results["failures"] == []
    assert set(results["durations s"]) >= {"s3", "git", "s3-scale", "git-scale"}
    # the docs' tables are generated from this file: every backend's peers side by side
    section = render(results, out)
    assert "| s3 cold | dagfetch cold sync: **" in section
    assert "| git no change | dagfetch sync: **" in section
    assert "### Scale curves: S3" in section and "| 200 |" in section


def test_a_seeded_moto_lists_and_pages_as_moto_does(tmp_path: Path) -> None:
    """The benchmarks' moto serves flat listings from a sorted index of its keys (moto sorts
    the whole bucket per page): after writes and deletes, pages must still be moto's own."""
    from benchmarks.data import relpath
    from benchmarks.seeded_moto import seeded_moto

    with seeded_moto(tmp_path / "moto.log", [("seeded", "p", 250, 64)]) as server:
        client = server.client()
        client.put_object(Bucket="seeded", Key="p/zz-new.py", Body=b"new")
        client.put_object(Bucket="seeded", Key=f"p/{relpath(3)}", Body=b"overwritten")
        client.delete_object(Bucket="seeded", Key=f"p/{relpath(4)}")
        client.put_object(Bucket="seeded", Key="q/elsewhere.py", Body=b"not under p/")
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket="seeded", Prefix="p/", PaginationConfig={"PageSize": 40}
        )
        keys = [(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]
        after = client.list_objects_v2(Bucket="seeded", Prefix="p/", StartAfter=f"p/{relpath(247)}")
        folders = client.list_objects_v2(Bucket="seeded", Prefix="p/dags/", Delimiter="/")
    expected = {f"p/{relpath(i)}": 64 for i in range(250) if i != 4}
    expected.update({"p/zz-new.py": 3, f"p/{relpath(3)}": 11})
    assert keys == sorted(expected.items())
    assert [o["Key"] for o in after["Contents"]] == [
        f"p/{relpath(248)}", f"p/{relpath(249)}", "p/zz-new.py"
    ]
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["p/dags/d000/", "p/dags/d001/",
                                                                "p/dags/d002/"]


def test_peak_memory_of_a_process_is_its_own_not_the_benchmark_processes() -> None:
    """Linux carries a process's high-water mark across fork and exec: measured straight from
    a large benchmark process, every child would report that process's memory."""
    from benchmarks.scenario_scale import peak_memory

    ballast = bytearray(256 << 20)
    for i in range(0, len(ballast), 4096):  # resident, not just reserved
        ballast[i] = 1
    small, _ = peak_memory([sys.executable, "-c", "pass"])
    touch_64_mib = "x = bytearray(64 << 20); x[::4096] = b'1' * len(x[::4096])"
    large, cpu = peak_memory([sys.executable, "-c", touch_64_mib])
    del ballast
    assert small < 64 << 20
    assert large - small > 60 << 20 and cpu > 0
    with pytest.raises(RuntimeError, match="failed with 3"):
        peak_memory([sys.executable, "-c", "raise SystemExit(3)"])


@pytest.mark.timeout(300)
def test_s3_rounds_run_every_variant_in_every_round_and_report_their_medians() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.s3_rounds", "--rounds", "2", "--files", "30",
         "--concurrency", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    for variant in ("dagfetch ", "dagfetch, concurrency 3 "):
        assert sum(line.startswith(f"round {n} {variant}") for n in (1, 2)
                   for line in lines) == 2
        [median] = [line for line in lines if line.startswith(f"  {variant}")]
        assert "moto CPU" in median and median.endswith("x")
