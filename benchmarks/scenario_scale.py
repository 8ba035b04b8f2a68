"""Scale curves: no-change and one-changed syncs of S3 and git at growing sizes, beside the
raw operation they cannot beat (one listing; one ref lookup / one fetch), so a check is seen to
grow with the listing only, with no per-version or per-record term; and the peak memory of a
whole ``dagfetch sync`` process at the largest size.

Sizes: 1,000 and 10,000 files (``--quick``: 200). 100,000 files is left out on a
shared 2-core machine: moto lists 10,000 keys in about 2 s of its own CPU.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, ratio_target, row
from benchmarks.process import DAGFETCH, write_manifest
from benchmarks.scenario_git import REPO, daemon, git_cli, make_repository
from benchmarks.scenario_s3 import BUCKET, PREFIX, moto
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.git import GitDaemon, git
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY, MotoServer

FILE_SIZE = 2048


def sizes(config: Config) -> list[int]:
    """1,000 and 10,000 files, or ``$DAGFETCH_BENCH_SCALE`` (comma-separated counts)."""
    if config.quick:  # CI: one small size, so the quick run stays short
        return [200]
    given = os.environ.get("DAGFETCH_BENCH_SCALE")
    return [int(n) for n in given.split(",")] if given else [1_000, 10_000]


def peak_memory(argv: list[str]) -> int:
    """Peak resident memory (bytes) of the process ``argv``, from the kernel's accounting."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{argv} failed with {process.returncode}")
    return usage.ru_maxrss * 1024


def memory_row(scenario: str, manifest: Path, home: Path) -> Row:
    argv = [str(DAGFETCH), "--manifest", str(manifest), "--home", str(home), "sync"]
    return Row(
        scenario, "peak memory, cold dagfetch sync process", [float(peak_memory(argv))], unit="B"
    )


def s3_scale(config: Config) -> tuple[list[Row], list[Target]]:
    rows: list[Row] = []
    with moto(config.workdir) as server:
        os.environ["DAGFETCH_CONN_BENCH"] = server.connection()
        for count in sizes(config):
            rows.extend(_s3_size(config, server, count))
    targets = [
        ratio_target(f"s3 scale {count:,}", "no-change sync", "one raw s3fs listing", 1.2)
        for count in sizes(config)
    ]
    return rows, targets


def _s3_size(config: Config, server: MotoServer, count: int) -> list[Row]:
    import s3fs

    client = server.client()
    fs = s3fs.S3FileSystem(
        key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"endpoint_url": server.endpoint}
    )
    bucket = f"{BUCKET}-{count}"
    client.create_bucket(Bucket=bucket)
    for i in range(count):
        client.put_object(
            Bucket=bucket, Key=f"{PREFIX}/{relpath(i)}", Body=file_bytes(i, FILE_SIZE)
        )
    repositories = {"r": {"url": f"s3://{bucket}/{PREFIX}", "conn_id": "bench"}}
    ws = Workspace(
        parse_manifest({"dag_repositories": repositories}),
        cache_root=config.workdir / f"s3-{count}",
    )
    ws.sync_one("r")
    generation = iter(range(1, 1_000_000))

    def change_one() -> None:
        client.put_object(
            Bucket=bucket,
            Key=f"{PREFIX}/{relpath(count // 2)}",
            Body=file_bytes(count // 2, FILE_SIZE, next(generation)),
        )

    def listing() -> None:
        fs.invalidate_cache()
        fs.find(f"{bucket}/{PREFIX}", detail=True)

    def sync() -> None:
        ws.sync_one("r")

    scenario = f"s3 scale {count:,}"
    rows = [
        row(scenario, "no-change sync", sync, config, extra={"files": count}),
        row(scenario, "one raw s3fs listing", listing, config, baseline_for="no-change sync"),
        row(scenario, "one-changed sync", sync, config, setup=change_one),
    ]
    if count == sizes(config)[-1]:
        manifest = write_manifest(config.workdir / f"s3-{count}.json", repositories)
        rows.append(memory_row(scenario, manifest, config.workdir / f"s3-mem-{count}"))
    return rows


def git_scale(config: Config) -> tuple[list[Row], list[Target]]:
    rows: list[Row] = []
    for count in sizes(config):
        work = config.workdir / f"git-{count}"
        work.mkdir()
        with daemon(work) as server:
            rows.extend(_git_size(config, server, work, count))
    return rows, []


def _git_size(config: Config, server: GitDaemon, work: Path, count: int) -> list[Row]:
    author = work / "author"
    make_repository(server.root, author, count, commits=3)
    url = server.url(REPO)
    repositories = {"r": {"url": url}}
    ws = Workspace(parse_manifest({"dag_repositories": repositories}), cache_root=work / "cache")
    ws.sync_one("r")
    checkout = work / "checkout"
    git_cli("clone", "-q", "--depth", "1", url, checkout)
    generation = iter(range(3, 1_000_000))

    def new_commit() -> None:
        g = next(generation)
        (author / relpath(count // 2)).write_bytes(file_bytes(count // 2, FILE_SIZE, generation=g))
        git("commit", "-q", "-a", "-m", f"commit {g}", cwd=author)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=author)

    def sync() -> None:
        ws.sync_one("r")

    def ls_remote() -> None:
        git_cli("ls-remote", url, "refs/heads/main")

    def fetch_and_reset() -> None:
        git_cli("fetch", "-q", "--depth", "1", "origin", "main", cwd=checkout)
        git_cli("reset", "-q", "--hard", "FETCH_HEAD", cwd=checkout)

    scenario = f"git scale {count:,}"
    rows = [
        row(scenario, "no-change sync", sync, config, extra={"files": count}),
        row(scenario, "git ls-remote", ls_remote, config, baseline_for="no-change sync"),
        row(scenario, "one-commit sync", sync, config, setup=new_commit),
        row(
            scenario,
            "git fetch --depth 1 + reset --hard",
            fetch_and_reset,
            config,
            setup=new_commit,
            baseline_for="one-commit sync",
        ),
    ]
    if count == sizes(config)[-1]:
        manifest = write_manifest(work / "dagfetch.json", repositories)
        rows.append(memory_row(scenario, manifest, work / "mem"))
    return rows


SCENARIOS: dict[str, Callable[[Config], tuple[list[Row], list[Target]]]] = {
    "s3-scale": s3_scale,
    "git-scale": git_scale,
}
