"""S3 scenarios against moto_server on 127.0.0.1: cold, no-change and one-changed syncs,
each beside the tools users would otherwise reach for, on the same bucket in the same run:
through the Python API beside in-process peers (s3fs, boto3, Airflow's S3DagBundle called in
its own process), and as whole ``dagfetch`` processes beside whole processes (``aws s3 sync``,
a fresh process running the S3DagBundle). Requests are counted in moto's access log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, attempt, cpu_extra, ratio_target, row
from benchmarks.peers import airflow
from benchmarks.peers import rows as peer_rows
from benchmarks.process import cpu_recorded, dagfetch_cli, write_manifest
from benchmarks.seeded_moto import seeded_moto
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.procs import environ
from tests.servers.s3 import ACCESS_KEY, AWS_ENV, REGION, SECRET_KEY, MotoServer

BUCKET = "bench"
PREFIX = "dags"
AWSCLI_VENV = Path(__file__).resolve().parent / ".venvs" / "awscli"


@contextmanager
def moto(workdir: Path) -> Iterator[MotoServer]:
    with environ(AWS_ENV):
        server = MotoServer(workdir / "moto.log")
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _awscli() -> Path | None:
    """awscli (v1) pins botocore exactly, so it lives in a venv of its own."""
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        done = subprocess.run(
            [str(AWSCLI_VENV / "bin" / "pip"), "install", "-q", "awscli"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"awscli baseline skipped: {done.stderr[-300:]}", file=sys.stderr)
            return None
    return aws


def s3(config: Config) -> tuple[list[Row], list[Target]]:
    # the data: 2,000 files of 2 KB (scale curves: benchmarks/scenario_scale.py);
    # $DAGFETCH_BENCH_S3_FILES makes it smaller on a machine too loaded for moto to keep up
    count = 200 if config.quick else int(os.environ.get("DAGFETCH_BENCH_S3_FILES", 2_000))
    with seeded_moto(config.workdir / "moto.log", [(BUCKET, PREFIX, count, FILE_SIZE)]) as server:
        return _run(config, server, count)


FILE_SIZE = 2048
API = "dagfetch cold sync"
CLI = "dagfetch CLI cold sync"
API_SYNC = "dagfetch sync"
AIRFLOW = "Airflow S3DagBundle"
CLI_SYNC = "dagfetch CLI sync"


def _run(config: Config, server: MotoServer, count: int) -> tuple[list[Row], list[Target]]:
    import s3fs

    client = server.client()
    os.environ["DAGFETCH_CONN_BENCH"] = server.connection()
    repositories = {"r": {"url": f"s3://{BUCKET}/{PREFIX}", "conn_id": "bench"}}
    manifest = parse_manifest({"dag_repositories": repositories})
    manifest_file = write_manifest(config.workdir / "dagfetch.json", repositories)
    fs = s3fs.S3FileSystem(
        key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"endpoint_url": server.endpoint}
    )
    work = config.workdir
    rows: list[Row] = []

    def requests(fn: Callable[[], object]) -> dict[str, int]:
        """Requests per method one run of ``fn`` makes, from moto's access log."""
        mark = server.mark()
        fn()
        counts: dict[str, int] = {}
        for method, _, _ in server.requests_since(mark):
            counts[f"{method} requests"] = counts.get(f"{method} requests", 0) + 1
        return dict(sorted(counts.items()))

    def timed(
        scenario: str,
        name: str,
        fn: Callable[[], object],
        *,
        per: int | None = None,
        **kwargs: Any,
    ) -> Row:
        """``row`` with the client CPU and moto's CPU of the measured runs in ``extra``."""
        cpu: list[float] = []
        moto_cpu: list[float] = []
        assert server.process.proc is not None
        recorded = cpu_recorded(fn, cpu, (server.process.proc.pid, moto_cpu))
        measured = row(scenario, name, recorded, config, count=requests, **kwargs)
        runs = slice(config.warmup, config.warmup + config.repeat)
        measured.extra.update(cpu_extra(cpu[runs], per, moto_cpu[runs]))
        return measured

    def optional(what: str, make: Callable[..., Row], *args: Any, **kwargs: Any) -> list[Row]:
        """A peer's row, ``make(*args, **kwargs)``: one that fails is reported (in the
        results' failures), not fatal to the run."""
        return attempt(config, what, lambda: [make(*args, **kwargs)], [])

    # -- cold -------------------------------------------------------------------------
    fresh: list[Path] = []

    def new_dir() -> Path:
        for old in fresh:
            subprocess.run(["chmod", "-R", "u+w", str(old)], check=False)
            shutil.rmtree(old, ignore_errors=True)
        fresh.clear()
        path = work / uuid.uuid4().hex
        fresh.append(path)
        return path

    target: dict[str, Path] = {}

    def setup() -> None:
        target["dir"] = new_dir()

    def dagfetch_cold() -> None:
        Workspace(manifest, cache_root=target["dir"]).sync_one("r")

    def s3fs_get() -> None:
        fs.invalidate_cache()
        fs.get(f"{BUCKET}/{PREFIX}/", str(target["dir"]) + "/", recursive=True)

    def boto3_loop() -> None:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
            for obj in page.get("Contents", []):
                dest = target["dir"] / obj["Key"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())

    cold = "s3 cold"
    rows.append(timed(cold, API, dagfetch_cold, setup=setup, per=count, extra={"objects": count}))
    rows.append(
        timed(cold, "s3fs recursive get", s3fs_get, setup=setup, per=count, baseline_for=API)
    )
    if not config.quick:
        rows += optional(
            "boto3 loop", timed, cold, "boto3 loop", boto3_loop, setup=setup, per=count,
            baseline_for=API,
        )
    cli_cold = dagfetch_cli(manifest_file, lambda: target["dir"], "sync")
    if not config.quick:  # whole processes cost seconds each: CI measures the no-change one
        rows.append(timed(cold, CLI, cli_cold, setup=setup, per=count))
    aws = None if config.quick else attempt(config, "awscli install", _awscli, None)
    aws_warm = work / "aws-warm"
    if aws is not None:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

        def aws_sync_into(dest: Callable[[], Path]) -> Callable[[], None]:
            def run() -> None:
                subprocess.run(
                    [
                        str(aws),
                        "s3",
                        "sync",
                        f"s3://{BUCKET}/{PREFIX}",
                        str(dest()),
                        "--endpoint-url",
                        server.endpoint,
                        "--only-show-errors",
                    ],
                    check=True,
                    env=env,
                )

            return run

        rows += optional(
            "aws s3 sync, cold", timed, cold, "aws s3 sync", aws_sync_into(lambda: target["dir"]),
            setup=setup, per=count, baseline_for=CLI,
        )
        aws_sync_warm = aws_sync_into(lambda: aws_warm)
        if not attempt(config, "aws s3 sync, first sync", lambda: [aws_sync_warm()], [None]):
            aws = None
    python = (
        None if config.quick
        else attempt(config, "Airflow install", airflow.airflow_python, None)
    )

    def bundle(storage: Path) -> airflow.AirflowBundle:
        assert python is not None
        return airflow.s3_bundle(
            python,
            storage,
            endpoint=server.endpoint,
            bucket=BUCKET,
            prefix=PREFIX,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
        )

    if python is not None:
        rows += attempt(
            config,
            "Airflow S3DagBundle, cold",
            lambda: peer_rows.cold_rows(
                config, cold, AIRFLOW, bundle, new_dir, requests, api=API, cli=CLI, per=count
            ),
            [],
        )
    targets = [
        ratio_target(
            cold, API, "s3fs recursive get", 1.0, "cold sync no slower than s3fs's own bulk get"
        ),
    ]
    if aws is not None:
        targets.append(
            ratio_target(
                cold,
                CLI,
                "aws s3 sync",
                0.8,
                "cold dagfetch sync <= 0.8x aws s3 sync (whole processes)",
            )
        )

    # -- no change, one change -----------------------------------------------------------
    warm = work / "warm"
    ws = Workspace(manifest, cache_root=warm)
    ws.sync_one("r")
    cli_warm = work / "cli-warm"
    cli_sync = dagfetch_cli(manifest_file, lambda: cli_warm, "sync")
    cli_sync()
    warm_bundle = bundle(work / "airflow-warm") if python is not None else None
    if warm_bundle is not None:
        started = attempt(
            config, "Airflow S3DagBundle, first initialize", warm_bundle.initialize, None
        )
        if started is None:
            warm_bundle.close()
            warm_bundle = None

    def listing() -> None:
        fs.invalidate_cache()
        fs.find(f"{BUCKET}/{PREFIX}", detail=True)

    def sync() -> None:
        ws.sync_one("r")

    generation = iter(range(1, 1_000_000))
    changed = f"{PREFIX}/{relpath(count // 2)}"

    def change_one() -> None:
        client.put_object(
            Bucket=BUCKET, Key=changed, Body=file_bytes(count // 2, FILE_SIZE, next(generation))
        )

    def listing_and_get() -> None:
        listing()
        fs.cat_file(f"{BUCKET}/{changed}")

    for scenario, change, raw_name, raw in (
        ("s3 no change", None, "one raw s3fs listing", listing),
        ("s3 one changed", change_one, "listing + one GET", listing_and_get),
    ):
        rows.append(timed(scenario, API_SYNC, sync, setup=change))
        rows.append(timed(scenario, raw_name, raw, setup=change, baseline_for=API_SYNC))
        if not config.quick or change is None:
            rows.append(timed(scenario, CLI_SYNC, cli_sync, setup=change))
        if aws is not None:
            rows += optional(
                f"aws s3 sync, {scenario}", timed, scenario, "aws s3 sync", aws_sync_warm,
                setup=change, baseline_for=CLI_SYNC,
            )
        if warm_bundle is not None:
            rows += optional(
                f"Airflow S3DagBundle, {scenario}", peer_rows.refresh_row, config, scenario,
                AIRFLOW, warm_bundle, change, requests, api=API_SYNC,
            )
    targets.append(ratio_target("s3 no change", API_SYNC, "one raw s3fs listing", 1.2))
    targets.append(ratio_target("s3 one changed", API_SYNC, "listing + one GET", 1.5))
    if aws is not None:
        targets.append(
            ratio_target(
                "s3 no change",
                CLI_SYNC,
                "aws s3 sync",
                1.0,
                "no-change dagfetch sync <= 1.0x aws s3 sync (processes)",
            )
        )
    if warm_bundle is not None:
        warm_bundle.close()
    return rows, targets


SCENARIOS = {"s3": s3}
