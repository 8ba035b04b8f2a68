"""The ``dagfetch`` command as a whole process, beside the floor it stands on, each pair
measured interleaved (one run of each variant per round) so that the load of the machine
falls on both sides alike:

- ``dagfetch --version`` against ``python -c "import click"`` (same interpreter, same click);
- a no-change ``dagfetch sync`` of a local folder against ``python -c "import click,
  fsspec"``;
- a no-change ``dagfetch sync`` of S3 (moto_server) against ``aws s3 sync`` into a folder
  already up to date (the awscli venv of :mod:`benchmarks.scenario_s3`; full runs only);
- a no-change ``dagfetch sync`` of a ``git daemon`` repository against ``git ls-remote``, and
  beside the floor of any Python command doing the same through dulwich (an interpreter,
  ``dulwich.client`` and one ref advertisement).

dagfetch's modules are byte-compiled by the run before any scenario
(:func:`benchmarks.process.byte_compile`), as pip does when it installs a wheel. What each
command may import is asserted by
tests/cli/test_startup.py; this measures what it costs. Each row's ``extra`` has the median
CPU time of the process (``os.wait4``), which a loaded machine inflates less than wall time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, ratio_target
from benchmarks.process import DAGFETCH, write_manifest

VERSION = "dagfetch --version"
CLICK = 'python -c "import click"'
LOCAL = "dagfetch sync, local, no change"
CLICK_FSSPEC = 'python -c "import click, fsspec"'
S3 = "dagfetch sync, S3, no change"
AWS = "aws s3 sync, no change"
GIT = "dagfetch sync, git, no change"
LS_REMOTE = "git ls-remote"
DULWICH_REFS = "python + dulwich ref lookup"
# the floor of any Python command that asks a git server for its refs through dulwich: an
# interpreter, dulwich's client, one ref advertisement (no click, no dagfetch)
DULWICH_REFS_CODE = ("import sys; from dulwich.client import get_transport_and_path; "
                     "client, path = get_transport_and_path(sys.argv[1]); client.get_refs(path)")

Command = tuple[str, Sequence[str], dict[str, str] | None]  # name, argv, environment


def interleaved(scenario: str, commands: Sequence[Command], baselines: dict[str, str],
                rounds: int, warmup: int) -> list[Row]:
    """Run every command once per round, in turn; rows of wall times, CPU in ``extra``.
    ``baselines`` maps a baseline's name to the dagfetch row it is the floor of."""
    wall: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in commands}
    for i in range(warmup + rounds):
        for name, argv, env in commands:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{name}: {' '.join(argv)} failed ({status})")
            if i >= warmup:
                wall[name].append(elapsed)
                cpu[name].append(usage.ru_utime + usage.ru_stime)
    return [Row(scenario, name, wall[name], baseline_for=baselines.get(name),
                extra={"process CPU s": round(statistics.median(cpu[name]), 3)})
            for name, _, _ in commands]


def startup(config: Config) -> tuple[list[Row], list[Target]]:
    # more runs than elsewhere: each is tens of milliseconds and the machine is noisy
    rounds = config.repeat if config.quick else max(config.repeat, 15)
    work = config.workdir
    python = sys.executable
    rows = interleaved("cli start-up", [
        (VERSION, [str(DAGFETCH), "--version"], None),
        (CLICK, [python, "-c", "import click"], None),
        ("python -c pass", [python, "-c", "pass"], None),
    ], {CLICK: VERSION, "python -c pass": VERSION}, rounds, config.warmup)
    targets = [ratio_target("cli start-up", VERSION, CLICK, 1.3)]

    source = work / "local"
    for i in range(50):
        path = source / relpath(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_bytes(i, 2048))
    local = _no_change_sync(work / "local.json", source.as_uri(), work / "home-local")
    rows += interleaved("cli no-change, local", [
        (LOCAL, local, None),
        (CLICK_FSSPEC, [python, "-c", "import click, fsspec"], None),
    ], {CLICK_FSSPEC: LOCAL}, rounds, config.warmup)
    targets.append(ratio_target("cli no-change, local", LOCAL, CLICK_FSSPEC, 1.3))

    git_rows, git_targets = _git(config, rounds)
    rows += git_rows
    targets += git_targets
    if not config.quick:
        s3_rows, s3_targets = _s3(config)
        rows += s3_rows
        targets += s3_targets
    return rows, targets


def _no_change_sync(manifest: Path, url: str, home: Path, **entry: str) -> list[str]:
    """The argv of a ``dagfetch sync`` of ``url``, synced once here so every run is a
    no-change sync."""
    write_manifest(manifest, {"r": {"url": url, **entry}})
    argv = [str(DAGFETCH), "--manifest", str(manifest), "--home", str(home), "sync"]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return argv


def _git(config: Config, rounds: int) -> tuple[list[Row], list[Target]]:
    from benchmarks.scenario_git import REPO, daemon, git_cli, make_repository
    from tests.servers.git import GIT_ENV

    work = config.workdir
    with daemon(work) as server:
        make_repository(server.root, work / "git-author", 200, 2)
        url = server.url(REPO)
        sync = _no_change_sync(work / "git.json", url, work / "home-git")
        git_cli("ls-remote", url)
        rows = interleaved("cli no-change, git", [
            (GIT, sync, None),
            (LS_REMOTE, ["git", "ls-remote", url], {**os.environ, **GIT_ENV}),
            (DULWICH_REFS, [sys.executable, "-c", DULWICH_REFS_CODE, url], None),
        ], {LS_REMOTE: GIT, DULWICH_REFS: GIT}, rounds, config.warmup)
    return rows, [
        ratio_target("cli no-change, git", GIT, LS_REMOTE, 1.5),
        ratio_target("cli no-change, git", GIT, LS_REMOTE, 1.0,
                     f"{GIT} <= 1.0x {LS_REMOTE} (issue 14, item 3)"),
    ]


def _s3(config: Config) -> tuple[list[Row], list[Target]]:
    from benchmarks.scenario_s3 import BUCKET, PREFIX, _awscli, moto
    from tests.servers.s3 import ACCESS_KEY, REGION, SECRET_KEY

    aws = _awscli()
    if aws is None:
        return [], []
    work = config.workdir
    count = int(os.environ.get("DAGFETCH_BENCH_S3_FILES", 2_000))
    with moto(work) as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for i in range(count):
            client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{relpath(i)}",
                              Body=file_bytes(i, 2048))
        env = {**os.environ, "DAGFETCH_CONN_BENCH": server.connection()}
        os.environ["DAGFETCH_CONN_BENCH"] = env["DAGFETCH_CONN_BENCH"]
        sync = _no_change_sync(work / "s3.json", f"s3://{BUCKET}/{PREFIX}", work / "home-s3",
                               conn_id="bench")
        aws_env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION}
        dest = work / "aws-s3"
        shutil.rmtree(dest, ignore_errors=True)
        aws_sync = [str(aws), "s3", "sync", f"s3://{BUCKET}/{PREFIX}", str(dest),
                    "--endpoint-url", server.endpoint, "--only-show-errors"]
        subprocess.run(aws_sync, check=True, env=aws_env)
        rows = interleaved("cli no-change, s3", [
            (S3, sync, env),
            (AWS, aws_sync, aws_env),
        ], {AWS: S3}, config.repeat, config.warmup)
    for measured in rows:
        measured.extra["objects"] = count
    return rows, [ratio_target("cli no-change, s3", S3, AWS, 1.0)]


SCENARIOS = {"startup": startup}
