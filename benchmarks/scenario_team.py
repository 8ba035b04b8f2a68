"""The team cache: a cold worker, a warm one (``team``), 50 workers at once, and what 100
versions cost to store (``team-scale``), against moto_server on 127.0.0.1, beside Airflow's
S3DagBundle and ``git clone --depth 1`` from a git daemon on the same tree in the same run.

Requests are counted at the servers (moto's access log, the git daemon's log). The leading
node syncs the origin bucket and publishes to the team cache; workers read only the team cache.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.data import churn, file_bytes, make_tree, relpath
from benchmarks.harness import Config, Row, Target, ratio_target, row
from benchmarks.scenario_s3 import moto
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.git import GitDaemon, git
from tests.servers.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer

ORIGIN = "origin"
TEAM = "team"
SIZE = 2048

_WORKER = """
import json, sys, time
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
data, root = json.loads(sys.argv[1]), sys.argv[2]
imported = time.time()
Workspace(parse_manifest(data), cache_root=root).follow("r")
print(imported, time.time())
"""


def _count(server: MotoServer, mark: int, bucket: str) -> int:
    return sum(1 for _, path, _ in server.settled_requests_since(mark)
               if path.startswith(f"/{bucket}"))


def team(config: Config) -> tuple[list[Row], list[Target]]:
    """A cold worker (beside the S3 bundle and git) and a warm one."""
    return _scenario(config, scale=False)


def team_scale(config: Config) -> tuple[list[Row], list[Target]]:
    """Many workers at once, and the bytes 100 versions cost (minutes of the full run)."""
    return _scenario(config, scale=True)


def _scenario(config: Config, *, scale: bool) -> tuple[list[Row], list[Target]]:
    # --quick (CI, tests/test_benchmarks.py) only proves the scenario runs: smallest sizes
    count = 100 if config.quick else 2000
    workers = 2 if config.quick else 50
    versions = 5 if config.quick else 100
    with moto(config.workdir) as server:
        return _run(config, server, count, workers, versions, scale)


def _run(config: Config, server: MotoServer, count: int, workers: int,
         versions: int, scale: bool) -> tuple[list[Row], list[Target]]:
    client = server.client()
    for bucket in (ORIGIN, TEAM):
        client.create_bucket(Bucket=bucket)
    for i in range(count):
        client.put_object(Bucket=ORIGIN, Key=f"dags/{relpath(i)}", Body=file_bytes(i, SIZE))
    os.environ["DAGFETCH_CONN_BENCH"] = server.connection()
    data: dict[str, Any] = {
        "dag_repositories": {"r": {"url": f"s3://{ORIGIN}/dags", "conn_id": "bench"}},
        "team_cache": {"url": f"s3://{TEAM}/cache", "conn_id": "bench"},
    }
    manifest = parse_manifest(data)
    work = config.workdir
    leader = Workspace(manifest, cache_root=work / "leader")
    leader.sync()
    leader.publish("r")
    rows: list[Row] = []
    targets: list[Target] = []
    if scale:
        rows.append(_many_workers(server, work, data, workers, targets))
        rows.append(_stored(server, work, count, versions))
        return rows, targets
    scenario = "team cold"

    # -- a cold worker ------------------------------------------------------------------
    fresh: dict[str, Path] = {}

    def new_root() -> None:
        old = fresh.get("root")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        fresh["root"] = work / f"worker-{uuid.uuid4().hex}"

    def team_requests(fn: Any) -> dict[str, int]:
        mark = server.mark()
        fn()
        return {"team cache requests": _count(server, mark, TEAM),
                "origin requests": _count(server, mark, ORIGIN)}

    def cold() -> None:
        Workspace(manifest, cache_root=fresh["root"]).follow("r")

    name = "dagfetch follow (team cache)"
    rows.extend(_cold_rows(config, server, scenario, name, count, cold, new_root,
                           team_requests))
    targets.append(_requests_target(scenario, name, 3))
    rows.append(_git_row(config, scenario, name, count))
    if any(r.name == "Airflow S3DagBundle initialize" for r in rows):
        targets.append(ratio_target(scenario, name, "Airflow S3DagBundle initialize", 0.05))

    # -- a warm worker: the previous version, one file changed ----------------------------
    template = work / "warm-template"
    Workspace(manifest, cache_root=template).follow("r")
    client.put_object(Bucket=ORIGIN, Key=f"dags/{relpath(count // 2)}",
                      Body=file_bytes(count // 2, SIZE, generation=1))
    leader.sync()
    leader.publish("r")

    def warm_setup() -> None:
        new_root()
        shutil.copytree(template, fresh["root"], symlinks=True)

    rows.append(row("team one changed", "dagfetch follow (team cache)", cold, config,
                    setup=warm_setup, count=team_requests))
    targets.append(_requests_target("team one changed", "dagfetch follow (team cache)", 3))
    return rows, targets


def _requests_target(scenario: str, name: str, limit: int) -> Target:
    def check(rows: dict[str, Row]) -> tuple[bool, str]:
        extra = rows[name].extra
        got, origin = extra["team cache requests"], extra["origin requests"]
        return got <= limit and origin == 0, (
            f"{got} team cache requests (target <= {limit}), {origin} at the origin")

    return Target(scenario, f"{name}: <= {limit} requests, none at the origin", check)


def _cold_rows(config: Config, server: MotoServer, scenario: str, name: str, count: int,
               cold: Any, new_root: Any, team_requests: Any) -> list[Row]:
    """dagfetch's cold follow and Airflow's S3DagBundle ``initialize`` over the same files,
    their samples interleaved (one of each in turn, so both see the same load), each timed
    around the call alone in a process that has imported its library already: dagfetch's in
    this process (whose S3 file system fsspec keeps from the leader's upload), the bundle's
    in a fresh child process of Airflow's environment (its S3 client made inside the call).
    The S3 bundle runs in the full run only: its environment takes minutes to install."""
    python = None
    if not config.quick:
        from benchmarks.peers.airflow import airflow_python

        python = airflow_python()
    ours: list[float] = []
    theirs: list[float] = []
    requests = 0
    for i in range(config.warmup + config.repeat):
        new_root()
        start = time.perf_counter()
        cold()
        elapsed = time.perf_counter() - start
        if python is not None:
            wall, requests = _s3_bundle_once(config, server, python, i)
            if i >= config.warmup:
                theirs.append(wall)
        if i >= config.warmup:
            ours.append(elapsed)
    new_root()
    rows = [Row(scenario, name, ours, extra={"files": count, **team_requests(cold)})]
    if theirs:
        rows.append(Row(scenario, "Airflow S3DagBundle initialize", theirs, baseline_for=name,
                        extra={"origin requests": requests, "files": count}))
    return rows


def _s3_bundle_once(config: Config, server: MotoServer, python: Path, i: int) -> tuple[float, int]:
    from benchmarks.peers.airflow import s3_bundle

    storage = config.workdir / f"airflow-{i}"
    mark = server.mark()
    with s3_bundle(python, storage, endpoint=server.endpoint, bucket=ORIGIN, prefix="dags",
                   access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION) as bundle:
        result = bundle.initialize()
    requests = _count(server, mark, ORIGIN)
    shutil.rmtree(storage, ignore_errors=True)
    return result.wall, requests


def _git_row(config: Config, scenario: str, name: str, count: int) -> Row:
    served = config.workdir / "git-served"
    served.mkdir()
    bare = served / "dags.git"
    git("init", "-q", "--bare", "-b", "main", bare)
    src = config.workdir / "git-src"
    make_tree(src, count, SIZE)
    git("init", "-q", "-b", "main", src)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "tree", cwd=src)
    git("push", "-q", str(bare), "main", cwd=src)
    daemon = GitDaemon(served, config.workdir / "daemon.log")
    target: dict[str, Path] = {}

    def setup() -> None:
        target["dir"] = config.workdir / f"clone-{uuid.uuid4().hex}"

    def clone() -> None:
        git("clone", "-q", "--depth", "1", daemon.url("dags.git"), target["dir"])

    try:
        before = daemon.requests("dags.git")
        result = row(scenario, "git clone --depth 1 (git daemon)", clone, config, setup=setup,
                     baseline_for=name)
        runs = config.warmup + config.repeat
        result.extra["git requests"] = (daemon.requests("dags.git") - before) // runs
    finally:
        daemon.stop()
    return result


def _many_workers(server: MotoServer, work: Path, data: dict[str, Any], workers: int,
                  targets: list[Target]) -> Row:
    """``workers`` processes with their own cache roots, started at once (simulated pods):
    each one's start-to-ready time (interpreter and imports included) and its follow alone,
    sorted, and what reached each server meanwhile."""
    mark = server.mark()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    started = time.time()
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(data),
                               str(work / f"pod-{i}")], stdout=subprocess.PIPE, text=True,
                              env=env) for i in range(workers)]
    ready, following = [], []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed ({proc.returncode})")
        imported, done = map(float, out.strip().splitlines()[-1].split())
        ready.append(done - started)
        following.append(done - imported)
    team_requests = _count(server, mark, TEAM)
    origin_requests = _count(server, mark, ORIGIN)
    ready.sort()
    following.sort()
    scenario = f"team {workers} workers"
    name = "dagfetch follow, each its own cache"

    def check(rows: dict[str, Row]) -> tuple[bool, str]:
        return origin_requests == 0, f"{origin_requests} requests at the origin"

    targets.append(Target(scenario, "workers send no request to the origin", check))
    return Row(scenario, name, ready, extra={
        "workers": workers, "p50 s": round(statistics.median(ready), 3), "p95 s": _p95(ready),
        "follow alone p50 s": round(statistics.median(following), 3),
        "follow alone p95 s": _p95(following),
        "team cache requests": team_requests, "origin requests": origin_requests})


def _p95(values: list[float]) -> float:
    return round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 3)


def _stored(server: MotoServer, work: Path, count: int, versions: int) -> Row:
    """Bytes the team cache holds after ``versions`` uploads at 1% churn, against the floor
    (every distinct content once). The origin is a folder: only the team cache is measured."""
    origin = work / "churn-origin"
    make_tree(origin, count, SIZE)
    data = {"dag_repositories": {"r": {"url": str(origin), "keep_versions": versions}},
            "team_cache": {"url": f"s3://{TEAM}/churn", "conn_id": "bench"}}
    leader = Workspace(parse_manifest(data), cache_root=work / "churn-leader")
    floor = count * SIZE
    for generation in range(versions):
        if generation:
            for i in churn(count, 0.01, seed=generation):
                (origin / relpath(i)).write_bytes(file_bytes(i, SIZE, generation))
                floor += SIZE
        leader.sync()
        leader.publish("r")
    client = server.client()
    stored = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=TEAM, Prefix="churn/"):
        stored += sum(obj["Size"] for obj in page.get("Contents", []))
    return Row(f"team {versions} versions", "bytes stored in the team cache", [float(stored)],
               unit="B", extra={"floor bytes": floor, "ratio to floor": round(stored / floor, 2),
                                "versions": versions, "churn": "1%"})


SCENARIOS = {"team": team, "team-scale": team_scale}
