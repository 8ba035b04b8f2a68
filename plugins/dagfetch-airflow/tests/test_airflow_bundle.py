"""DagfetchBundle under Airflow itself: its bundle manager builds the bundle from
``dag_bundle_config_list`` and the DAG processor's per-file parse reads it; served from a
real git daemon and a real S3 server (moto_server), pinned versions, concurrent refreshes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from airflow_env import SCRIPTS, AirflowEnv

from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.git import GitRemote, GitServers
from tests.servers.s3 import MotoServer

pytestmark = pytest.mark.slow

NAME = "dags"
HELPER = b'TASKS = ["extract", "load"]\n'


def dag_file(*extra_tasks: str) -> bytes:
    lines = ["from airflow.sdk import DAG",
             "from airflow.providers.standard.operators.empty import EmptyOperator",
             "from lib.names import TASKS",  # a helper module of the bundle
             "with DAG('etl'):",
             "    first = EmptyOperator(task_id=TASKS[0])",
             "    first >> EmptyOperator(task_id=TASKS[1])"]
    lines += [f"    first >> EmptyOperator(task_id={t!r})" for t in extra_tasks]
    return ("\n".join(lines) + "\n").encode()


class Bundle:
    """One bundle configuration and the dagfetch cache it shares with every Airflow process."""

    def __init__(self, airflow: AirflowEnv, cache: Path, kwargs: dict[str, Any],
                 env: dict[str, str] | None = None) -> None:
        self.airflow = airflow
        self.cache = cache
        self.kwargs = {**kwargs, "cache_root": str(cache)}
        self.env = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [{"name": NAME, "classpath": "dagfetch_airflow.DagfetchBundle",
              "kwargs": self.kwargs}]), **(env or {})}

    def parse(self, *args: str) -> Any:
        return self.airflow.script("bundle_parse", NAME, *args, extra_env=self.env)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(self.airflow.python), str(SCRIPTS / "bundle_parse.py"),
                                 NAME, *args], env=self.airflow.environ(self.env),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def workspace(self, keep_versions: int = 1) -> Workspace:
        """The same cache seen from dagfetch's side (gc, pins, current)."""
        entry = {k: v for k, v in self.kwargs.items() if k in ("url", "conn_id")}
        manifest = parse_manifest({"dag_repositories": {NAME: {**entry,
                                                              "keep_versions": keep_versions}}})
        return Workspace(manifest, cache_root=self.cache)


def seed(remote: GitRemote) -> None:
    files = {"etl.py": dag_file(), "lib/__init__.py": b"", "lib/names.py": HELPER}
    for path, data in files.items():
        remote.write(path, data)
    remote.push()


def test_git_bundle_parsed_by_the_dag_processor_refreshed_and_pinned_to_an_old_version(
    airflow: AirflowEnv, git_servers: GitServers, tmp_path: Path
) -> None:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)
    seed(remote)
    bundle = Bundle(airflow, tmp_path / "cache", {"url": remote.url})

    first = bundle.parse()
    v1 = bundle.workspace().cache.current_id(NAME)
    assert first["supports_versioning"] is True
    assert (first["version"], first["dags"], first["errors"]) == (
        v1, {"etl": ["extract", "load"]}, {})

    remote.write("etl.py", dag_file("report"))
    remote.push()
    moved = bundle.parse("--refresh")
    v2 = bundle.workspace().cache.current_id(NAME)
    assert v2 != v1
    assert (moved["version"], moved["dags"]) == (v2, {"etl": ["extract", "load", "report"]})

    # a task of the old version: exactly the old tree, pinned while the bundle holds it
    old = bundle.parse("--version", v1)
    assert (old["version"], old["dags"]) == (v1, {"etl": ["extract", "load"]})
    assert Path(old["path"]) != Path(moved["path"])
    assert any(h.startswith(f"airflow-{NAME}-") for h in old["pins"][v1])
    # the process ended: its pin went with it, and gc may now take v1 ...
    assert v1 not in bundle.workspace().cache.pins(NAME)
    bundle.workspace().gc(grace_seconds=0)
    assert [e.version.version_id for e in bundle.workspace().versions(NAME) if e.present] == [v2]
    # ... which git still has: a bundle asked for v1 fetches it again
    again = bundle.parse("--version", v1)
    assert (again["version"], again["dags"]) == (v1, {"etl": ["extract", "load"]})


def test_a_version_in_use_is_kept_by_gc_until_its_process_ends(
    airflow: AirflowEnv, git_servers: GitServers, tmp_path: Path
) -> None:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)
    seed(remote)
    bundle = Bundle(airflow, tmp_path / "cache", {"url": remote.url})
    bundle.parse()
    v1 = bundle.workspace().cache.current_id(NAME)
    remote.write("etl.py", dag_file("report"))
    remote.push()
    bundle.parse("--refresh")

    task = bundle.start("--version", str(v1), "--hold", "60")  # a running task on v1
    try:
        assert task.stdout is not None
        assert next(line for line in task.stdout if line.startswith("{")) == (
            json.dumps({"holding": v1}) + "\n")
        bundle.workspace().gc(grace_seconds=0)
        assert Path(bundle.workspace().cache.path(NAME, v1)).is_dir()  # kept: pinned
    finally:
        task.kill()  # dies without a chance to unpin
        task.wait()
    assert v1 in bundle.workspace().cache.pins(NAME)
    bundle.parse("--refresh")  # the next refresh drops the dead process's pin
    assert v1 not in bundle.workspace().cache.pins(NAME)


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    moto_server.reset()
    moto_server.client().create_bucket(Bucket="airflow-dags")
    return "airflow-dags"


def put(moto_server: MotoServer, bucket: str, files: dict[str, bytes]) -> None:
    client = moto_server.client()
    for path, data in files.items():
        client.put_object(Bucket=bucket, Key=f"team/{path}", Body=data)


def test_s3_bundle_with_an_airflow_connection_two_processes_refresh_with_one_download(
    airflow: AirflowEnv, moto_server: MotoServer, bucket: str, tmp_path: Path
) -> None:
    put(moto_server, bucket, {"etl.py": dag_file(), "lib/__init__.py": b"",
                              "lib/names.py": HELPER})
    # the conn_id resolves through Airflow's own lookup: AIRFLOW_CONN_<ID>
    bundle = Bundle(airflow, tmp_path / "cache",
                    {"url": f"s3://{bucket}/team", "conn_id": "dags_s3"},
                    env={"AIRFLOW_CONN_DAGS_S3": moto_server.connection()})
    first = bundle.parse()
    assert (first["dags"], first["errors"]) == ({"etl": ["extract", "load"]}, {})
    v1 = first["version"]
    assert v1 == bundle.workspace().cache.current_id(NAME)

    put(moto_server, bucket, {"etl.py": dag_file("report")})
    mark = moto_server.mark()
    racers = [bundle.start("--refresh") for _ in range(2)]
    outs = [json.loads(proc.communicate(timeout=240)[0].strip().splitlines()[-1])
            for proc in racers]
    assert {out["version"] for out in outs} == {bundle.workspace().cache.current_id(NAME)}
    assert outs[0]["version"] != v1
    assert all(out["dags"] == {"etl": ["extract", "load", "report"]} for out in outs)
    gets = [path for method, path, _ in moto_server.requests_since(mark)
            if method == "GET" and path.startswith(f"/{bucket}/team/")]
    assert gets == [f"/{bucket}/team/etl.py"]  # two processes, one download of what changed

    # an object-store version pinned by a task: served exactly, though the bucket moved on
    old = bundle.parse("--version", v1)
    assert (old["version"], old["dags"]) == (v1, {"etl": ["extract", "load"]})
    # once gc took it, an unversioned bucket cannot give it back: a clear error
    bundle.workspace().gc(grace_seconds=0)
    gone = bundle.parse("--version", v1)
    assert f"dag bundle '{NAME}'" in gone["error"] and v1 in gone["error"]


def test_bad_kwargs_name_the_bundle_and_the_kwarg(airflow: AirflowEnv, tmp_path: Path) -> None:
    bundle = Bundle(airflow, tmp_path / "cache", {"url": "s3://b/p", "keep_versions": 0})
    out = bundle.parse()
    assert "dag bundle 'dags': kwargs.keep_versions: 0 is not a whole number" in out["error"]
