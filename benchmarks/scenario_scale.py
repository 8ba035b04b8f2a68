"""Scale curves: no-change and one-changed syncs of S3 and git at growing sizes, beside the
raw operation they cannot beat (one listing; one ref lookup / one fetch), so a check is seen to
grow with the listing only, with no per-version or per-record term; and the peak memory of a
whole cold ``dagfetch sync`` process at every size.

Sizes: git at 1,000, 10,000 and 100,000 files, S3 at 1,000 and 10,000 (``--quick``: 200),
or ``$DAGFETCH_BENCH_SCALE`` (comma-separated counts, both backends). S3 at 100,000 is left to
``DAGFETCH_BENCH_SCALE=1000,10000,100000``: moto renders each listed key and serves each GET in
Python, so a 100,000-key listing costs it about a minute of CPU and the cold sync that fills
the cache about ten on 2 cores. The data is written without going through the servers' front doors:
every bucket straight into moto's backend before it listens (:mod:`benchmarks.seeded_moto`),
every repository through ``git fast-import``. The cold process that measures the memory also
fills the cache the in-process syncs then check, so each size is fetched once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, ratio_target, row
from benchmarks.process import DAGFETCH, write_manifest
from benchmarks.scenario_git import REPO, daemon, git_cli
from benchmarks.scenario_s3 import BUCKET, PREFIX
from benchmarks.seeded_moto import seeded_moto
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.git import GIT_ENV, GitDaemon, git
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY, MotoServer

FILE_SIZE = 2048
NO_CHANGE = "no-change sync"


def sizes(config: Config, largest: int = 100_000) -> list[int]:
    """1,000 and 10,000 files and ``largest`` (if more), or ``$DAGFETCH_BENCH_SCALE``."""
    if config.quick:  # CI: one small size, so the quick run stays short
        return [200]
    given = os.environ.get("DAGFETCH_BENCH_SCALE")
    if given:
        return [int(n) for n in given.split(",")]
    return sorted({1_000, 10_000, largest})


def repeat_at(config: Config, count: int) -> Config:
    """Fewer runs at the largest sizes: a 100,000-key listing costs moto most of a minute."""
    if count < 50_000:
        return config
    return Config(config.quick, min(config.repeat, 2), config.warmup, config.workdir,
                  config.failures)


# Linux carries ru_maxrss across fork and exec: a process started from this (large) benchmark
# process would report this process's high-water mark as its own. A small interpreter
# started first forks the measured process, whose count then starts from that interpreter's
# few MiB; it reports the measured process's wait4 figures on its stdout.
_FORK_AND_MEASURE = """
import os, sys
devnull = os.open(os.devnull, os.O_WRONLY)
pid = os.fork()
if pid == 0:
    os.dup2(devnull, 1)
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def peak_memory(argv: list[str]) -> tuple[int, float]:
    """Peak resident memory (bytes, from the kernel's accounting) and CPU seconds of the
    process ``argv``, counted from a small parent's (see ``_FORK_AND_MEASURE``)."""
    out = subprocess.run([sys.executable, "-c", _FORK_AND_MEASURE, *argv],
                         check=True, capture_output=True, text=True).stdout.split()
    code, maxrss_kib, cpu = int(out[0]), int(out[1]), float(out[2])
    if code != 0:
        raise RuntimeError(f"{argv} failed with {code}")
    return maxrss_kib * 1024, cpu


def cold_process(scenario: str, manifest: Path, home: Path) -> Row:
    """A cold ``dagfetch sync`` process into ``home``: its peak memory, CPU in ``extra``."""
    argv = [str(DAGFETCH), "--manifest", str(manifest), "--home", str(home), "sync"]
    peak, cpu = peak_memory(argv)
    return Row(scenario, "peak memory, cold dagfetch sync process", [float(peak)], unit="B",
               extra={"client CPU s": round(cpu, 2)})


# -- S3 --------------------------------------------------------------------------------------


def s3_scale(config: Config) -> tuple[list[Row], list[Target]]:
    rows: list[Row] = []
    counts = sizes(config, largest=10_000)
    seeds = [(f"{BUCKET}-{count}", PREFIX, count, FILE_SIZE) for count in counts]
    with seeded_moto(config.workdir / "moto.log", seeds) as server:
        os.environ["DAGFETCH_CONN_BENCH"] = server.connection()
        for count in counts:
            rows.extend(_s3_size(repeat_at(config, count), server, count))
    targets = [
        ratio_target(f"s3 scale {count:,}", NO_CHANGE, "one raw s3fs listing", 1.2)
        for count in counts
    ]
    return rows, targets


def _s3_size(config: Config, server: MotoServer, count: int) -> list[Row]:
    import s3fs

    client = server.client()
    fs = s3fs.S3FileSystem(
        key=ACCESS_KEY, secret=SECRET_KEY, client_kwargs={"endpoint_url": server.endpoint}
    )
    bucket = f"{BUCKET}-{count}"
    scenario = f"s3 scale {count:,}"
    repositories = {"r": {"url": f"s3://{bucket}/{PREFIX}", "conn_id": "bench"}}
    manifest = write_manifest(config.workdir / f"s3-{count}.json", repositories)
    home = config.workdir / f"s3-{count}"
    memory = cold_process(scenario, manifest, home)
    ws = Workspace(parse_manifest({"dag_repositories": repositories}), cache_root=home)
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

    def requests(fn: Callable[[], object]) -> dict[str, int]:
        mark = server.mark()
        fn()
        return {"GET requests": sum(1 for m, _, _ in server.requests_since(mark) if m == "GET")}

    return [
        row(scenario, NO_CHANGE, sync, config, extra={"files": count}, count=requests),
        row(scenario, "one raw s3fs listing", listing, config, baseline_for=NO_CHANGE,
            count=requests),
        row(scenario, "one-changed sync", sync, config, setup=change_one),
        memory,
    ]


# -- git -------------------------------------------------------------------------------------


def git_scale(config: Config) -> tuple[list[Row], list[Target]]:
    rows: list[Row] = []
    for count in sizes(config):
        work = config.workdir / f"git-{count}"
        work.mkdir()
        with daemon(work) as server:
            rows.extend(_git_size(repeat_at(config, count), server, work, count))
    return rows, []


def fast_import(bare: Path, commands: Iterator[bytes]) -> None:
    """Feed ``git fast-import`` in ``bare``: no working tree, no index, one pack."""
    process = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=bare, stdin=subprocess.PIPE,
        env={**os.environ, **GIT_ENV, "GIT_DIR": str(bare)},
    )
    assert process.stdin is not None
    for chunk in commands:
        process.stdin.write(chunk)
    process.stdin.write(b"done\n")
    process.stdin.close()
    if process.wait() != 0:
        raise RuntimeError(f"git fast-import in {bare} failed with {process.returncode}")


def _commit(
    number: int, files: Iterator[tuple[str, bytes]], on_existing: bool = False
) -> Iterator[bytes]:
    """One commit on main; ``on_existing``: the first of a new fast-import, on the commit
    main already names (within one stream a commit follows the previous one by itself)."""
    message = f"commit {number}".encode()
    yield (b"commit refs/heads/main\ncommitter bench <bench@example.com> %d +0000\n"
           b"data %d\n%s\n" % (1_700_000_000 + number, len(message), message))
    if on_existing:
        yield b"from refs/heads/main^0\n"
    for path, data in files:
        yield b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)


def make_repository(bare: Path, count: int, commits: int) -> None:
    """A bare repository of ``count`` files and ``commits`` commits, each after the first
    changing 1% of the files, as :func:`benchmarks.scenario_git.make_repository` makes it
    (which writes a working tree and commits it: minutes at 100,000 files)."""
    git("init", "-q", "--bare", "-b", "main", bare)
    step = max(1, count // 100)

    def stream() -> Iterator[bytes]:
        yield from _commit(0, ((relpath(i), file_bytes(i, FILE_SIZE)) for i in range(count)))
        for c in range(1, commits):
            changed = range(c % step, count, 100)
            yield from _commit(
                c, ((relpath(i), file_bytes(i, FILE_SIZE, generation=c)) for i in changed)
            )

    fast_import(bare, stream())


def _git_size(config: Config, server: GitDaemon, work: Path, count: int) -> list[Row]:
    bare = server.root / REPO
    make_repository(bare, count, commits=3)
    url = server.url(REPO)
    scenario = f"git scale {count:,}"
    repositories = {"r": {"url": url}}
    manifest = write_manifest(work / "dagfetch.json", repositories)
    home = work / "cache"
    memory = cold_process(scenario, manifest, home)
    ws = Workspace(parse_manifest({"dag_repositories": repositories}), cache_root=home)
    checkout = work / "checkout"
    git_cli("clone", "-q", "--depth", "1", url, checkout)
    generation = iter(range(3, 1_000_000))

    def new_commit() -> None:
        g = next(generation)
        i = count // 2
        fast_import(bare, _commit(g, iter([(relpath(i), file_bytes(i, FILE_SIZE, g))]),
                                  on_existing=True))

    def sync() -> None:
        ws.sync_one("r")

    def ls_remote() -> None:
        git_cli("ls-remote", url, "refs/heads/main")

    def fetch_and_reset() -> None:
        git_cli("fetch", "-q", "--depth", "1", "origin", "main", cwd=checkout)
        git_cli("reset", "-q", "--hard", "FETCH_HEAD", cwd=checkout)

    return [
        row(scenario, NO_CHANGE, sync, config, extra={"files": count}),
        row(scenario, "git ls-remote", ls_remote, config, baseline_for=NO_CHANGE),
        row(scenario, "one-commit sync", sync, config, setup=new_commit),
        row(
            scenario,
            "git fetch --depth 1 + reset --hard",
            fetch_and_reset,
            config,
            setup=new_commit,
            baseline_for="one-commit sync",
        ),
        memory,
    ]


SCENARIOS: dict[str, Callable[[Config], tuple[list[Row], list[Target]]]] = {
    "s3-scale": s3_scale,
    "git-scale": git_scale,
}
