"""Scenarios on the local disk only: materialization, disk use, lookup, peak memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from benchmarks.data import churn, disk_usage, file_bytes, make_tree, relpath
from benchmarks.harness import Config, Row, Target, measure, ratio_target
from dagfetch.cache.publish import PlannedFile
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace


def _workspace(source: Path, cache: Path, **fields: object) -> Workspace:
    manifest = parse_manifest({"dag_repositories": {"r": {"url": str(source), **fields}}})
    return Workspace(manifest, cache_root=cache)


def materialize(config: Config) -> tuple[list[Row], list[Target]]:
    """Build a version of N files whose contents are all in the object store (what a sync does
    once the changed files are downloaded) against cp -al and cp -r of the same tree."""
    count = 1_000 if config.quick else 10_000
    base = config.workdir / "materialize"
    source = base / "source"
    make_tree(source, count, 4096)
    ws = _workspace(source, base / "cache")
    ws.sync_one("r")
    current = ws.current("r")
    assert current is not None
    planned = [PlannedFile(f.as_remote(), sha256=f.sha256) for f in current.files]
    tree = Path(current.path)
    made: list[Path] = []

    def publish() -> None:
        with ws.cache.staging("r") as staging:
            verified = ws.cache.verify(planned, backend_version=uuid.uuid4().hex)
            published = ws.cache.publish(
                staging, verified, source_url="bench", fingerprint="", refetchable=False
            )
        made.append(Path(published.version.path))

    def cp(flag: str) -> None:
        dest = base / f"copy-{uuid.uuid4().hex}"
        subprocess.run(["cp", flag, str(tree), str(dest)], check=True)
        made.append(dest)

    def clean() -> None:
        for path in made:
            subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)
            shutil.rmtree(path)
        made.clear()

    kw: dict[str, Any] = {"repeat": config.repeat, "warmup": config.warmup, "setup": clean}
    rows = [
        Row("materialize", "dagfetch publish", measure(publish, **kw), extra={"files": count}),
        Row(
            "materialize",
            "cp -al",
            measure(lambda: cp("-al"), **kw),
            baseline_for="dagfetch publish",
        ),
        Row(
            "materialize", "cp -r", measure(lambda: cp("-r"), **kw), baseline_for="dagfetch publish"
        ),
    ]
    clean()
    return rows, [
        ratio_target(
            "materialize",
            "dagfetch publish",
            "cp -al",
            2.0,
            "building a version from stored contents <= 2x cp -al",
        )
    ]


def disk(config: Config) -> tuple[list[Row], list[Target]]:
    """Bytes used by 100 versions at 1% churn per version, against plain copies."""
    count = 1_000 if config.quick else 10_000
    versions = 20 if config.quick else 100
    base = config.workdir / "disk"
    source = base / "source"
    make_tree(source, count, 4096)
    ws = _workspace(source, base / "cache", keep_versions=versions + 1)
    ws.sync_one("r")
    one_version = disk_usage(ws.path("r"))
    for v in range(1, versions):
        for i in churn(count, 0.01, seed=v):
            (source / relpath(i)).write_bytes(file_bytes(i, 4096, generation=v))
        ws.sync_one("r")
    present = [e for e in ws.versions("r") if e.present]
    assert len(present) == versions, len(present)
    all_trees = disk_usage(base / "cache")
    # gc keeps every version (keep_versions > versions) but drops the trees nobody reads:
    # each stays restorable offline from its record and the shared contents
    report = ws.gc(grace_seconds=0)
    assert len(report.stored) == versions - 1 and not report.evicted
    stored = disk_usage(base / "cache")
    kept, trees = f"{versions} versions kept, after gc", f"{versions} versions, all trees"
    rows = [
        Row(
            "disk",
            kept,
            [float(stored)],
            unit="B",
            extra={"files": count, "versus_one_version": round(stored / one_version, 2)},
        ),
        Row(
            "disk",
            trees,
            [float(all_trees)],
            unit="B",
            extra={"versus_one_version": round(all_trees / one_version, 2)},
        ),
        Row("disk", "one version", [float(one_version)], unit="B"),
        Row(
            "disk",
            f"{versions} plain copies",
            [float(one_version * versions)],
            unit="B",
            baseline_for=kept,
        ),
    ]
    target = ratio_target(
        "disk",
        kept,
        "one version",
        2.0,
        f"{versions} versions at 1% churn <= 2x one version's disk",
    )
    return rows, [target]


def lookup(config: Config) -> tuple[list[Row], list[Target]]:
    """Time to resolve the current version's folder of a repository, in process."""
    base = config.workdir / "lookup"
    make_tree(base / "source", 10, 100)
    ws = _workspace(base / "source", base / "cache")
    ws.sync_one("r")
    link = base / "cache" / "r" / "current"
    n = 2_000 if config.quick else 20_000

    def many(fn: object) -> list[float]:
        def run() -> None:
            for _ in range(n):
                fn()  # type: ignore[operator]

        return [s / n * 1e6 for s in measure(run, repeat=config.repeat, warmup=config.warmup)]

    rows = [
        Row("lookup", "Workspace.path", many(lambda: ws.path("r")), unit="us"),
        Row(
            "lookup",
            "os.path.realpath",
            many(lambda: os.path.realpath(link)),
            unit="us",
            baseline_for="Workspace.path",
        ),
    ]
    return rows, []


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report the
# high-water mark of the (large) benchmark process it was forked from
_MEMORY_CHILD = """
import sys
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
if sys.argv[3] == "sync":
    m = parse_manifest({"dag_repositories": {"r": {"url": sys.argv[1]}}})
    Workspace(m, cache_root=sys.argv[2]).sync_one("r")
with open("/proc/self/status") as fh:
    hwm = next(line for line in fh if line.startswith("VmHWM:"))
print(int(hwm.split()[1]) * 1024)
"""


def memory(config: Config) -> tuple[list[Row], list[Target]]:
    """Peak memory of a cold sync of many small files, against the bare interpreter with
    dagfetch imported."""
    count = 10_000 if config.quick else 100_000
    base = config.workdir / "memory"
    make_tree(base / "source", count, 64)

    def child(mode: str) -> float:
        cache = base / f"cache-{uuid.uuid4().hex}"
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(base / "source"), str(cache), mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(out.strip())

    synced = child("sync")
    idle = child("idle")
    rows = [
        Row(
            "memory",
            f"cold sync, {count} files",
            [synced],
            unit="B",
            extra={"per_file_bytes": int((synced - idle) / count)},
        ),
        Row(
            "memory",
            "dagfetch imported, idle",
            [idle],
            unit="B",
            baseline_for=f"cold sync, {count} files",
        ),
    ]
    return rows, []


SCENARIOS = {"materialize": materialize, "disk": disk, "lookup": lookup, "memory": memory}
