"""Cold S3 syncs as whole processes, interleaved round by round on one seeded moto:
``python -m benchmarks.s3_rounds [--rounds 5] [--files 2000] [--concurrency 4 ...]
[--before PATH/bin/dagfetch ...]``.

The S3 scenario (:mod:`benchmarks.scenario_s3`) times each variant's runs back to back; on a
shared 2-core machine the load moves between them, and moto's CPU per request with it, so a
change of 10% cannot be told from the noise. Here each round runs every variant once (the
order reversed every other round), each a fresh process syncing cold into a new folder, and
each pair of one round is compared: ``dagfetch`` (this checkout), ``aws s3 sync`` when the
scenario's awscli venv exists (it is not created here), dagfetch with other ``concurrency``
options, and other checkouts' ``dagfetch`` commands (``--before``). Per run: wall time, the
process's CPU (``os.wait4``), moto's CPU (``/proc/<pid>/stat``) and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.process import DAGFETCH, process_cpu, write_manifest
from benchmarks.scenario_s3 import AWSCLI_VENV, BUCKET, FILE_SIZE, PREFIX
from benchmarks.seeded_moto import seeded_moto
from tests.servers.s3 import ACCESS_KEY, AWS_ENV, REGION, SECRET_KEY, MotoServer

AWS = "aws s3 sync"
Run = dict[str, float]


Command = Callable[[Path], list[str]]  # the command line, given the folder to sync into


def variants(args: argparse.Namespace, server: MotoServer, work: Path) -> dict[str, Command]:
    """Each variant's command line, given the folder it syncs into."""
    url = f"s3://{BUCKET}/{PREFIX}"

    def dagfetch(command: Path, options: dict[str, object]) -> Command:
        entry: dict[str, object] = {"url": url, "conn_id": "bench"}
        if options:
            entry["options"] = options
        manifest = write_manifest(work / f"manifest-{next(numbers)}.json", {"r": entry})
        return lambda home: [str(command), "--manifest", str(manifest), "--home", str(home),
                             "sync"]

    numbers = iter(range(1_000_000))
    made: dict[str, Command] = {}
    made["dagfetch"] = dagfetch(DAGFETCH, {})
    for before in args.before:
        made[f"dagfetch at {before}"] = dagfetch(Path(before), {})
    for concurrency in args.concurrency:
        made[f"dagfetch, concurrency {concurrency}"] = dagfetch(
            DAGFETCH, {"concurrency": concurrency}
        )
    aws = AWSCLI_VENV / "bin" / "aws"
    if aws.exists():
        made[AWS] = lambda dest: [str(aws), "s3", "sync", url, str(dest), "--endpoint-url",
                                  server.endpoint, "--only-show-errors"]
    return made


def run_once(argv: list[str], env: dict[str, str], moto_pid: int, dest: Path) -> Run:
    load = os.getloadavg()[0]
    moto_before = process_cpu(moto_pid)
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{argv[0]} failed (wait status {status})")
    subprocess.run(["chmod", "-R", "u+w", str(dest)], check=False)  # the cache's read-only files
    shutil.rmtree(dest)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "moto": process_cpu(moto_pid) - moto_before, "load": load}


def report(runs: dict[str, list[Run]]) -> None:
    base = runs.get(AWS) or runs["dagfetch"]
    base_name = AWS if AWS in runs else "dagfetch"
    print(f"medians, and the median of each round's ratio to {base_name}:")
    for name, rows in runs.items():
        wall, cpu, moto = (statistics.median(row[key] for row in rows)
                           for key in ("wall", "cpu", "moto"))
        ratio = statistics.median(
            row["wall"] / other["wall"] for row, other in zip(rows, base, strict=True)
        )
        print(f"  {name:40s} wall {wall:6.2f} s  process CPU {cpu:5.2f} s  moto CPU "
              f"{moto:5.2f} s  {ratio:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3_rounds", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, action="append", default=[],
                        help="also dagfetch with this concurrency option (repeatable)")
    parser.add_argument("--before", action="append", default=[],
                        help="also this dagfetch command, another checkout's (repeatable)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="s3-rounds-") as scratch:
        work = Path(scratch)
        with seeded_moto(work / "moto.log", [(BUCKET, PREFIX, args.files, FILE_SIZE)]) as server:
            assert server.process.proc is not None
            moto_pid = server.process.proc.pid
            made = variants(args, server, work)
            env = {**os.environ, **AWS_ENV, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                   "DAGFETCH_CONN_BENCH": server.connection()}
            names = list(made)
            count = iter(range(1_000_000))

            def one(name: str) -> Run:
                dest = work / f"dest-{next(count)}"
                return run_once(made[name](dest), env, moto_pid, dest)

            one(names[0])  # warm-up: moto's first requests and the page cache
            runs: dict[str, list[Run]] = {name: [] for name in names}
            for number in range(args.rounds):
                for name in names if number % 2 == 0 else names[::-1]:
                    row = one(name)
                    runs[name].append(row)
                    print(f"round {number + 1} {name:40s} wall {row['wall']:6.2f} s  process "
                          f"CPU {row['cpu']:5.2f} s  moto CPU {row['moto']:5.2f} s  load "
                          f"{row['load']:.2f}", flush=True)
    report(runs)


if __name__ == "__main__":
    main()
