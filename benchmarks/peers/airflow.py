"""Apache Airflow 3's own DAG bundles (S3DagBundle, GitDagBundle) as benchmark peers.

Airflow is never a dependency of dagfetch, and its pins (botocore among them) cannot share the
project's environment, so it is installed into ``benchmarks/.venvs/airflow`` on first use, as
the awscli baseline is, and driven by subprocess: ``_airflow_child.py`` builds one bundle in
that environment and runs ``initialize`` / ``refresh`` on command, timing each call itself
(wall and client CPU, its git children included). The caller counts requests at the server
(moto's access log, the git daemon's log), exactly as for dagfetch's own rows.

    python = airflow_python()               # None (with a message) when it cannot be installed
    with s3_bundle(python, storage, endpoint=..., bucket=..., prefix=..., ...) as bundle:
        cold = bundle.initialize()           # BundleRun(wall, cpu, size, version)
        again = bundle.refresh()
    # a fresh process (interpreter start, imports, initialize), timed from outside:
    whole = s3_bundle(python, other_storage, ...).run_once()
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import attrs

from benchmarks.data import disk_usage

AIRFLOW_VERSION = "3.3.2"
AIRFLOW_VENV = Path(__file__).resolve().parent.parent / ".venvs" / "airflow"
# run with -I: the script's folder must not shadow the ``airflow`` package with this module
CHILD = Path(__file__).resolve().parent / "_airflow_child.py"
S3_BUNDLE = "airflow.providers.amazon.aws.bundles.s3:S3DagBundle"
GIT_BUNDLE = "airflow.providers.git.bundles.git:GitDagBundle"
_PROVIDERS = ["apache-airflow-providers-amazon", "apache-airflow-providers-git"]


def airflow_python() -> Path | None:
    """The Airflow environment's interpreter, installing it on first use (a few minutes).

    Airflow first, then the providers with Airflow pinned, so pip never trades Airflow's version
    for a provider's. Built under a temporary name and renamed when complete, so an interrupted
    install is never taken for a finished one (only ``bin/python`` is used, which survives the
    rename)."""
    python = AIRFLOW_VENV / "bin" / "python"
    if python.exists():
        return python
    building = AIRFLOW_VENV.with_name(f"airflow.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    pin = building / "airflow-pin.txt"
    pin.write_text(f"apache-airflow=={AIRFLOW_VERSION}\n")
    pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q"]
    print("installing Apache Airflow into benchmarks/.venvs/airflow ...", file=sys.stderr)
    for step in ([f"apache-airflow=={AIRFLOW_VERSION}"], ["-c", str(pin), *_PROVIDERS]):
        done = subprocess.run([*pip, *step], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"Airflow peers skipped: {done.stderr[-500:]}", file=sys.stderr)
            shutil.rmtree(building, ignore_errors=True)
            return None
    try:
        building.rename(AIRFLOW_VENV)
    except OSError:  # another run finished first: use its environment
        shutil.rmtree(building, ignore_errors=True)
    return python


@attrs.frozen
class BundleRun:
    """One bundle call. ``wall``/``cpu`` are the call alone (inside the bundle's process) or,
    from ``run_once``, the whole process (interpreter start, imports, initialize); ``cpu`` is
    client CPU time (the process and the git processes it ran), which a slow server does not
    inflate. ``size`` is the disk the bundle's storage folder holds afterwards."""

    wall: float
    cpu: float
    size: int
    version: str | None
    path: Path


def _environment(storage: Path, extra: dict[str, str]) -> dict[str, str]:
    home = storage / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # bundles need no metadata database; this one is never created
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(storage / "bundles"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AWS_EC2_METADATA_DISABLED": "true",
        **extra,
    }


class AirflowBundle:
    """One Airflow bundle in its own long-lived process (started on the first call), so
    ``refresh`` is timed as Airflow's DAG processor runs it: in a process that already holds
    the bundle."""

    def __init__(
        self,
        python: Path,
        storage: Path,
        classpath: str,
        kwargs: dict[str, Any],
        env: dict[str, str],
    ) -> None:
        self.python = python
        self.storage = storage
        self.spec = json.dumps({"classpath": classpath, "kwargs": kwargs, "name": "bench"})
        self.env = _environment(storage, env)
        self._process: subprocess.Popen[str] | None = None

    def initialize(self) -> BundleRun:
        return self._ask("initialize")

    def refresh(self) -> BundleRun:
        return self._ask("refresh")

    def run_once(self) -> BundleRun:
        """A fresh process that initializes the bundle and exits, timed from outside: what a
        cold start costs as a whole process."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [str(self.python), "-I", str(CHILD), self.spec, "--once"],
            env=self.env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"Airflow bundle failed: {done.stderr[-2000:]}")
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return self._result({**answer, "wall": wall, "cpu": cpu})

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                pass
            self._process.wait(timeout=30)
            self._process = None

    def __enter__(self) -> AirflowBundle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _ask(self, op: str) -> BundleRun:
        process = self._started()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"op": op}) + "\n")
        process.stdin.flush()
        return self._result(self._answer(process.stdout))

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None:
            self._process = subprocess.Popen(
                [str(self.python), "-I", str(CHILD), self.spec],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=(self.storage / "bundle.log").open("a"),
                text=True,
            )
            assert self._process.stdout is not None
            self._answer(self._process.stdout)  # {"ready": true}: imports done
        return self._process

    def _answer(self, stdout: IO[str]) -> dict[str, Any]:
        line = stdout.readline()
        if not line:
            log = (self.storage / "bundle.log").read_text()[-2000:]
            raise RuntimeError(f"Airflow bundle process ended: {log}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def _result(self, answer: dict[str, Any]) -> BundleRun:
        return BundleRun(
            wall=answer["wall"],
            cpu=answer["cpu"],
            size=disk_usage(self.storage / "bundles"),
            version=answer.get("version"),
            path=Path(answer["path"]),
        )


def s3_bundle(
    python: Path,
    storage: Path,
    *,
    endpoint: str,
    bucket: str,
    prefix: str,
    access_key: str,
    secret_key: str,
    region: str,
) -> AirflowBundle:
    """Airflow's S3DagBundle over ``s3://bucket/prefix`` at ``endpoint`` (moto_server)."""
    connection = {
        "conn_type": "aws",
        "login": access_key,
        "password": secret_key,
        "extra": {"endpoint_url": endpoint, "region_name": region},
    }
    return AirflowBundle(
        python,
        storage,
        S3_BUNDLE,
        {"aws_conn_id": "bench_aws", "bucket_name": bucket, "prefix": prefix},
        {"AIRFLOW_CONN_BENCH_AWS": json.dumps(connection)},
    )


def git_bundle(
    python: Path, storage: Path, *, url: str, tracking_ref: str = "main"
) -> AirflowBundle:
    """Airflow's GitDagBundle tracking ``tracking_ref`` of ``url`` (a git daemon's git:// URL)."""
    connection = {"conn_type": "git", "host": url}
    return AirflowBundle(
        python,
        storage,
        GIT_BUNDLE,
        {"git_conn_id": "bench_git", "tracking_ref": tracking_ref, "repo_url": url},
        {"AIRFLOW_CONN_BENCH_GIT": json.dumps(connection)},
    )
