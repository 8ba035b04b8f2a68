"""S3 scenarios against moto_server on 127.0.0.1: cold, no-change and one-changed syncs,
each beside the tools users would otherwise reach for, on the same bucket in the same run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, ratio_target, row
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
    count = 200 if config.quick else 10_000
    with moto(config.workdir) as server:
        return _run(config, server, count)


def _run(config: Config, server: MotoServer, count: int) -> tuple[list[Row], list[Target]]:
    import s3fs

    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    for i in range(count):
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{relpath(i)}", Body=file_bytes(i, 4096))
    os.environ["DAGFETCH_CONN_BENCH"] = server.connection()
    manifest = parse_manifest(
        {"dag_repositories": {"r": {"url": f"s3://{BUCKET}/{PREFIX}", "conn_id": "bench"}}}
    )
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

    # -- cold -------------------------------------------------------------------------
    fresh: list[Path] = []

    def new_dir() -> Path:
        for old in fresh:
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

    name = "dagfetch cold sync"
    rows.append(
        row(
            "s3 cold",
            name,
            dagfetch_cold,
            config,
            setup=setup,
            count=requests,
            extra={"objects": count},
        )
    )
    rows.append(
        row(
            "s3 cold",
            "s3fs recursive get",
            s3fs_get,
            config,
            setup=setup,
            baseline_for=name,
            count=requests,
        )
    )
    rows.append(row("s3 cold", "boto3 loop", boto3_loop, config, setup=setup, baseline_for=name))
    aws = None if config.quick else _awscli()
    if aws is not None:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

        def aws_sync() -> None:
            subprocess.run(
                [
                    str(aws),
                    "s3",
                    "sync",
                    f"s3://{BUCKET}/{PREFIX}",
                    str(target["dir"]),
                    "--endpoint-url",
                    server.endpoint,
                    "--only-show-errors",
                ],
                check=True,
                env=env,
            )

        rows.append(row("s3 cold", "aws s3 sync", aws_sync, config, setup=setup, baseline_for=name))
    targets = [
        ratio_target(
            "s3 cold",
            name,
            "s3fs recursive get",
            1.0,
            "cold sync no slower than s3fs's own bulk get",
        )
    ]
    if aws is not None:
        targets.append(
            ratio_target("s3 cold", name, "aws s3 sync", 1.0, "cold sync faster than aws s3 sync")
        )

    # -- no change, one change -----------------------------------------------------------
    ws = Workspace(manifest, cache_root=work / "warm")
    ws.sync_one("r")

    def listing() -> None:
        fs.invalidate_cache()
        fs.find(f"{BUCKET}/{PREFIX}", detail=True)

    def sync() -> None:
        ws.sync_one("r")

    rows.append(row("s3 no change", "dagfetch sync", sync, config, count=requests))
    rows.append(
        row(
            "s3 no change",
            "one raw s3fs listing",
            listing,
            config,
            baseline_for="dagfetch sync",
            count=requests,
        )
    )
    targets.append(ratio_target("s3 no change", "dagfetch sync", "one raw s3fs listing", 1.2))

    generation = iter(range(1, 1_000_000))
    changed = f"{PREFIX}/{relpath(count // 2)}"

    def change_one() -> None:
        client.put_object(
            Bucket=BUCKET, Key=changed, Body=file_bytes(count // 2, 4096, next(generation))
        )

    def listing_and_get() -> None:
        listing()
        fs.cat_file(f"{BUCKET}/{changed}")

    rows.append(
        row("s3 one changed", "dagfetch sync", sync, config, setup=change_one, count=requests)
    )
    rows.append(
        row(
            "s3 one changed",
            "listing + one GET",
            listing_and_get,
            config,
            baseline_for="dagfetch sync",
            count=requests,
        )
    )
    targets.append(ratio_target("s3 one changed", "dagfetch sync", "listing + one GET", 1.5))
    return rows, targets


SCENARIOS = {"s3": s3}
