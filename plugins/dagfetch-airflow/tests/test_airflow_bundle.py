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


# -- following a team cache -------------------------------------------------------------------

TEAM_BUCKET = "team-cache"


def team_kwargs(bucket: str) -> dict[str, Any]:
    """Bundle kwargs of a repository on S3 whose versions a leading node publishes to a team
    cache on the same server (another bucket); both through one Airflow connection."""
    return {"url": f"s3://{bucket}/team", "conn_id": "dags_s3",
            "team_cache": {"url": f"s3://{TEAM_BUCKET}/cache", "conn_id": "dags_s3"}}


def at(requests: list[tuple[str, str, int]], bucket: str) -> list[str]:
    return [f"{method} {path}" for method, path, _ in requests if path.startswith(f"/{bucket}")]


@pytest.fixture
def team_bucket(moto_server: MotoServer, bucket: str) -> str:
    moto_server.client().create_bucket(Bucket=TEAM_BUCKET)
    return TEAM_BUCKET


def test_a_following_bundle_serves_the_published_version_from_the_team_cache_only(
    airflow: AirflowEnv, moto_server: MotoServer, bucket: str, team_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put(moto_server, bucket, {"etl.py": dag_file(), "lib/__init__.py": b"",
                              "lib/names.py": HELPER})
    env = {"AIRFLOW_CONN_DAGS_S3": moto_server.connection()}
    monkeypatch.setenv("DAGFETCH_CONN_DAGS_S3", moto_server.connection())
    # the leading node is a bundle too (team_role "lead": refresh syncs and uploads) ...
    leader = Bundle(airflow, tmp_path / "leader", {**team_kwargs(bucket), "team_role": "lead"},
                    env=env)
    v1 = leader.parse("--refresh")["version"]
    # ... or dagfetch itself, on the same cache
    leading = Workspace(parse_manifest({
        "dag_repositories": {NAME: {"url": f"s3://{bucket}/team", "conn_id": "dags_s3"}},
        "team_cache": team_kwargs(bucket)["team_cache"]}), cache_root=tmp_path / "leader")
    assert leading.team_cache is not None and leading.team_cache.published(NAME) is not None

    # a worker: its DAG processor parses the published version, asked of the team cache only
    worker = Bundle(airflow, tmp_path / "worker", team_kwargs(bucket), env=env)
    mark = moto_server.mark()
    first = worker.parse()
    seen = moto_server.settled_requests_since(mark)
    assert (first["version"], first["dags"], first["errors"]) == (
        v1, {"etl": ["extract", "load"]}, {})
    assert at(seen, bucket) == []
    assert len(at(seen, team_bucket)) == 3  # the pointer, the document, the snapshot pack

    # the origin moves on; the bundle on the worker follows the pointer, not the origin
    put(moto_server, bucket, {"etl.py": dag_file("report")})
    mark = moto_server.mark()
    unchanged = worker.parse("--refresh")
    assert unchanged["version"] == v1
    assert at(moto_server.settled_requests_since(mark), bucket) == []
    leading.sync()
    v2 = leading.publish(NAME).version_id
    assert v2 != v1
    mark = moto_server.mark()
    moved = worker.parse("--refresh")
    seen = moto_server.settled_requests_since(mark)
    assert (moved["version"], moved["dags"]) == (v2, {"etl": ["extract", "load", "report"]})
    assert at(seen, bucket) == []

    # a task pod pinned to v1, which the plain bucket no longer has: from the team cache
    pod = Bundle(airflow, tmp_path / "pod", team_kwargs(bucket), env=env)
    mark = moto_server.mark()
    old = pod.parse("--version", v1)
    seen = moto_server.settled_requests_since(mark)
    assert (old["version"], old["dags"]) == (v1, {"etl": ["extract", "load"]})
    assert at(seen, bucket) == []
    assert 1 <= len(at(seen, team_bucket)) <= 3
    assert pod.workspace().cache.current_id(NAME) is None  # served pinned, not made current


def test_a_following_bundle_named_by_a_manifest_reads_the_published_version_of_the_database(
    airflow: AirflowEnv, moto_server: MotoServer, bucket: str, team_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagfetch.graphs.store import GraphStore

    monkeypatch.setenv("DAGFETCH_CONN_DAGS_S3", moto_server.connection())
    database = f"sqlite:///{tmp_path / 'graphs.db'}"
    manifest = tmp_path / "dagfetch.json"
    kwargs = team_kwargs(bucket)
    manifest.write_text(json.dumps({
        "dag_repositories": {"etl-code": {"url": kwargs["url"], "conn_id": "dags_s3"}},
        "team_cache": kwargs["team_cache"], "database": database}))
    leading = Workspace.from_manifest(manifest, cache_root=tmp_path / "leader")
    published = []
    for extra in ((), ("report",)):
        put(moto_server, bucket, {"etl.py": dag_file(*extra), "lib/__init__.py": b"",
                                  "lib/names.py": HELPER})
        leading.sync()
        published.append(leading.publish("etl-code").version_id)
    v1, v2 = published
    store = GraphStore.for_cache(tmp_path / "leader", database, upgrade=True)
    store.publish("etl-code", v1)  # the database says v1, though the pointer moved to v2

    worker = Bundle(airflow, tmp_path / "worker",
                    {"manifest": str(manifest), "repo_id": "etl-code"},
                    env={"AIRFLOW_CONN_DAGS_S3": moto_server.connection()})
    mark = moto_server.mark()
    first = worker.parse()
    assert (first["version"], first["dags"]) == (v1, {"etl": ["extract", "load"]})
    store.publish("etl-code", v2)
    moved = worker.parse("--refresh")
    assert (moved["version"], moved["dags"]) == (v2, {"etl": ["extract", "load", "report"]})
    assert at(moto_server.settled_requests_since(mark), bucket) == []


def test_bad_team_cache_kwargs_name_the_bundle_and_the_kwarg(
    airflow: AirflowEnv, tmp_path: Path
) -> None:
    bundle = Bundle(airflow, tmp_path / "cache",
                    {"url": "s3://b/p", "team_cache": {"url": "s3://t/c", "bucket": "t"}})
    assert ("dag bundle 'dags': kwargs.team_cache.bucket: " in bundle.parse()["error"])
    both = Bundle(airflow, tmp_path / "cache", {"url": "s3://b/p", "manifest": "m.toml"})
    assert "dag bundle 'dags': kwargs.url: give it in the manifest m.toml" in both.parse()["error"]
    lead = Bundle(airflow, tmp_path / "cache", {"url": "s3://b/p", "team_role": "lead"})
    assert "dag bundle 'dags': kwargs.team_role: 'lead' uploads to a team cache" in (
        lead.parse()["error"])
