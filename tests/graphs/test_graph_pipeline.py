"""sync -> extract -> record as one job, runs pinned to graph and code, and follow mode."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dagfetch.graphs import Graph, GraphStore, Task
from dagfetch.graphs import pipeline as pipeline_mod
from dagfetch.graphs.extract import extract_version
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.testing import LocalRemote, one_repository
from dagfetch.workspace import Workspace
from tests.graphs.dagfiles import DAGSHAPE, chain_dag, repo_files
from tests.servers.git import GitRemote

REPO = "dags"


def workspace(tmp_path: Path, url: str, cache: str = "cache", **top: Any) -> Workspace:
    return one_repository(url, tmp_path, repo_id=REPO, cache=cache, manifest=top,
                          keep_versions=1)


def seed(remote: Any, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        remote.write(path, data)
    remote.push()


def chain(dag_id: str, task_ids: list[str]) -> Graph:
    return Graph.of(dag_id, [Task(t, "BashOperator") for t in task_ids],
                    list(itertools.pairwise(task_ids)))


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every version folder the pipeline parses."""
    seen: list[Path] = []

    def counting(root: Path, **kwargs: Any) -> Any:
        seen.append(Path(root))
        return extract_version(root, **kwargs)

    monkeypatch.setattr(pipeline_mod, "extract_version", counting)
    return seen


def test_sync_extracts_each_new_version_once_into_sqlite_under_the_cache(
    tmp_path: Path, extractions: list[Path]
) -> None:
    remote = LocalRemote(tmp_path / "remote")
    seed(remote, repo_files(etl=chain_dag("etl", ["a", "b"]),
                            broken=b"import lib.missing_module\n"))
    ws = workspace(tmp_path, remote.url)
    pipeline = GraphPipeline(ws)
    assert pipeline.store.url.database == str(tmp_path / "cache" / ".dagfetch" / "graphs.sqlite3")

    [first] = pipeline.sync()
    assert first.ok and first.extracted and len(extractions) == 1
    assert pipeline.store.graph("etl") == chain("etl", ["a", "b"])
    [error] = pipeline.store.import_errors(REPO)
    assert error.path == "broken.py" and "ModuleNotFoundError" in error.message

    # unchanged: the remote is listed, nothing is parsed; not after a restart either
    [again] = pipeline.sync()
    assert not again.extracted
    [after_restart] = GraphPipeline(workspace(tmp_path, remote.url)).sync()
    assert not after_restart.extracted
    assert len(extractions) == 1

    seed(remote, {"etl.py": chain_dag("etl", ["a", "b", "c"])})
    [changed] = pipeline.sync()
    assert changed.extracted and len(extractions) == 2
    assert pipeline.store.latest("etl").number == 2
    assert pipeline.store.sources("etl", 2)[0].version_id == changed.version_id


def test_the_manifest_database_key_chooses_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    remote = LocalRemote(tmp_path / "remote")
    GraphStore(url).close()  # a configured database is created by `db upgrade`, not on use
    pipeline = GraphPipeline(workspace(tmp_path, remote.url, database=url))
    assert str(pipeline.store.url) == url
    assert not (tmp_path / "cache" / ".dagfetch" / "graphs.sqlite3").exists()


def test_a_pinned_run_keeps_graph_and_code_through_two_changes_and_gc(
    tmp_path: Path, store: GraphStore
) -> None:
    remote = LocalRemote(tmp_path / "remote")
    seed(remote, repo_files(etl=chain_dag("etl", ["extract", "load"])))
    ws = workspace(tmp_path, remote.url)
    pipeline = GraphPipeline(ws, store)
    [v1] = pipeline.sync()
    pin = pipeline.pin_run("manual__1", "etl")
    assert (pin.version.number, pin.source.version_id if pin.source else None) == (1, v1.version_id)

    seed(remote, {"etl.py": chain_dag("etl", ["extract", "transform", "load"])})
    [v2] = pipeline.sync()
    seed(remote, {"etl.py": chain_dag("etl", ["extract", "transform", "load", "notify"])})
    [v3] = pipeline.sync()
    assert [v.number for v in store.history("etl")] == [1, 2, 3]

    cache_gc, graph_gc = pipeline.gc(keep_graphs=1)
    assert cache_gc.evicted == ((REPO, v2.version_id),)  # v1 is pinned by the run
    assert graph_gc.removed == (("etl", 2),)  # version 1 is pinned by the run
    assert [v.number for v in store.history("etl")] == [1, 3]

    # the run still shows version 1's graph ...
    assert store.run_graph("manual__1", "etl") == chain("etl", ["extract", "load"])
    # ... and resolves version 1's code, which still parses to that graph
    code = pipeline.code_path("manual__1", "etl")
    assert code == ws.path(REPO, v1.version_id)
    assert (code / "etl.py").read_bytes() == chain_dag("etl", ["extract", "load"])
    assert extract_version(code).graphs[0][1] == store.run_graph("manual__1")
    # while new runs get the newest
    assert pipeline.pin_run("manual__2", "etl").version.number == 3
    assert v3.version_id == ws.cache.current_id(REPO)

    # once the run is released, its code may go; its graph stays as history
    assert pipeline.release_run("manual__1", "etl")
    seed(remote, {"etl.py": chain_dag("etl", ["only"])})
    pipeline.sync()
    cache_gc, _ = pipeline.gc(keep_graphs=1)
    assert (REPO, v1.version_id) in cache_gc.evicted
    assert store.run_graph("manual__1", "etl").tasks[0].task_id == "extract"


def test_follow_mode_serves_the_published_version_not_the_newest(
    tmp_path: Path, store: GraphStore
) -> None:
    # a local folder repository with history (git over file://), so any version can be fetched
    (tmp_path / "git").mkdir()
    remote = GitRemote.create(tmp_path / "git", tmp_path / "git-work",
                              lambda name: f"git+file://{tmp_path / 'git' / name}")
    seed(remote, repo_files(etl=chain_dag("etl", ["a", "b"])))

    leader = GraphPipeline(workspace(tmp_path, remote.url, cache="leader"), store)
    follower = GraphPipeline(workspace(tmp_path, remote.url, cache="follower"), store)
    [nothing] = follower.follow()
    assert not nothing.ok and "no version published" in (nothing.error or "")

    [led] = leader.sync(publish=True)
    assert led.published and store.published(REPO) == led.version_id

    # the remote moves on before the follower syncs
    seed(remote, {"etl.py": chain_dag("etl", ["a", "b", "c"])})
    newest = remote.head()
    assert newest != led.version_id

    [followed] = follower.follow()
    assert followed.ok and followed.followed and followed.version_id == led.version_id
    fws = follower.workspace
    assert fws.cache.current_id(REPO) == led.version_id
    assert (fws.path(REPO) / "etl.py").read_bytes() == chain_dag("etl", ["a", "b"])
    # the follower never parsed anything: the graphs come from the leader's database
    assert follower.store.graph("etl") == chain("etl", ["a", "b"])

    # following again is a no-op; after the leader publishes the newest, the follower moves
    [same] = follower.follow()
    assert same.ok and not same.followed
    [led2] = leader.sync(publish=True)
    assert led2.version_id == newest
    [moved] = follower.follow()
    assert moved.followed and fws.cache.current_id(REPO) == newest


def test_follow_on_a_remote_without_history_refuses_rather_than_serve_another_version(
    tmp_path: Path, store: GraphStore
) -> None:
    remote = LocalRemote(tmp_path / "remote")  # a plain folder: no way to fetch an old version
    seed(remote, repo_files(etl=chain_dag("etl", ["a"])))
    leader = GraphPipeline(workspace(tmp_path, remote.url, cache="leader"), store)
    [led] = leader.sync(publish=True)
    seed(remote, {"etl.py": chain_dag("etl", ["a", "b"])})
    follower = GraphPipeline(workspace(tmp_path, remote.url, cache="follower"), store)
    [outcome] = follower.follow()
    assert not outcome.ok and "keeps no history" in (outcome.error or "")
    assert follower.workspace.cache.current_id(REPO) is None
    assert store.published(REPO) == led.version_id


def test_watch_extracts_and_publishes_each_round(tmp_path: Path, store: GraphStore) -> None:
    remote = LocalRemote(tmp_path / "remote")
    seed(remote, repo_files(etl=chain_dag("etl", ["a"])))
    rounds: list[list[Any]] = []
    leader = GraphPipeline(workspace(tmp_path, remote.url, cache="leader"), store)
    leader.watch(publish=True, max_rounds=1, on_outcomes=rounds.append)
    [[outcome]] = rounds
    assert outcome.extracted and outcome.published
    assert store.published(REPO) == outcome.version_id
    follower = GraphPipeline(workspace(tmp_path, remote.url, cache="follower"), store)
    follower.watch(follow=True, max_rounds=1, on_outcomes=rounds.append)
    assert not rounds[1][0].ok  # a plain folder keeps no history (see above)


def test_pipeline_gc_keeps_the_import_errors_of_the_versions_the_cache_keeps(
    tmp_path: Path, store: GraphStore
) -> None:
    remote = LocalRemote(tmp_path / "remote")
    seed(remote, repo_files(etl=chain_dag("etl", ["a"]), broken=b"raise SystemExit(3)\n"))
    pipeline = GraphPipeline(workspace(tmp_path, remote.url), store)
    versions = []
    for n in range(4):
        seed(remote, {"notes.txt": f"{n}".encode()})
        [outcome] = pipeline.sync()
        versions.append(outcome.version_id)
        if n == 1:
            pipeline.pin_run("run1", "etl")  # the run keeps versions[1] in the cache
    # the extraction recorded the sha256 the cache verified for each DAG file
    dag_source = store.tables.dag_source
    with store.engine.connect() as conn:
        hashes = set(conn.execute(sa.select(dag_source.c.file_hash)).scalars())
    assert hashes == {next(f.sha256 for f in pipeline.workspace.cache.get(
        REPO, versions[0]).files if f.path == "etl.py")}
    cache_report, graph_report = pipeline.gc(keep_sources=1)
    assert cache_report.evicted
    assert sorted(graph_report.source_versions) == sorted(
        [(REPO, versions[0]), (REPO, versions[2])])
    with_errors = {e.version_id for v in versions for e in store.import_errors(REPO, v)}
    assert with_errors == {versions[1], versions[3]}


def test_only_changed_dag_files_run_again_when_nothing_else_changed(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    seed(remote, repo_files(etl=chain_dag("etl", ["a", "b"]), other=chain_dag("other", ["x"]),
                            broken=b"import lib.missing_module\n"))
    pipeline = GraphPipeline(workspace(tmp_path, remote.url))
    runs: list[Any] = []
    real = pipeline_mod.extract_version

    def recording(root: Path, **kwargs: Any) -> Any:
        runs.append(result := real(root, **kwargs))
        return result

    pipeline_mod.extract_version = recording  # type: ignore[assignment]
    try:
        pipeline.sync()
        seed(remote, {"etl.py": chain_dag("etl", ["a", "b", "c"])})  # a DAG file only
        [outcome] = pipeline.sync()
        assert outcome.extracted
        seed(remote, {"lib/dagshape.py": DAGSHAPE + b"\n# a helper changed\n"})
        pipeline.sync()
    finally:
        pipeline_mod.extract_version = real  # type: ignore[assignment]
    assert [r.parsed for r in runs] == [3, 1, 3]
    store = pipeline.store
    assert store.graph("etl") == chain("etl", ["a", "b", "c"])
    assert store.graph("other") == chain("other", ["x"])
    version = outcome.version_id
    assert [e.path for e in store.import_errors(REPO, version)] == ["broken.py"]
    assert {s.path for s in store.sources("other")} == {"other.py"}
    assert version in {s.version_id for s in store.sources("other")}
