"""What a pipeline keeps between extractions: its warm workers (in the process) and the
previous outcomes (on disk, for the next process), and when they are not used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagfetch.graphs import carryover
from dagfetch.graphs import pipeline as pipeline_mod
from dagfetch.graphs.extract import resolve_extractors
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.testing import LocalRemote, one_repository
from tests.graphs.dagfiles import DAGSHAPE, chain_dag, repo_files

REPO = "dags"


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each extraction ran (the others were carried over)."""
    counts: list[int] = []
    real = pipeline_mod.extract_version

    def recording(root: Path, **kwargs: Any) -> Any:
        result = real(root, **kwargs)
        counts.append(result.parsed)
        return result

    monkeypatch.setattr(pipeline_mod, "extract_version", recording)
    return counts


def setup(tmp_path: Path) -> tuple[LocalRemote, Any]:
    remote = LocalRemote(tmp_path / "remote")
    for path, data in repo_files(etl=chain_dag("etl", ["a", "b"]),
                                 other=chain_dag("other", ["x"]),
                                 broken=b"import lib.missing_module\n").items():
        remote.write(path, data)
    remote.push()
    return remote, lambda: one_repository(remote.url, tmp_path, repo_id=REPO, cache="cache",
                                          keep_versions=2)


def change(remote: LocalRemote, path: str, data: bytes) -> None:
    remote.write(path, data)
    remote.push()


def test_a_pipeline_keeps_its_workers_warm_between_syncs(
    tmp_path: Path, parsed: list[int]
) -> None:
    remote, workspace = setup(tmp_path)
    with GraphPipeline(workspace()) as pipeline:
        pipeline.sync()
        pool = pipeline.workers(resolve_extractors(None), pipeline.extract_settings)
        started, alive = pool.started, pool.alive
        assert alive >= 1
        change(remote, "lib/dagshape.py", DAGSHAPE + b"\n# a helper changed: all run again\n")
        pipeline.sync()
        assert pipeline.workers(resolve_extractors(None), pipeline.extract_settings) is pool
        assert pool.started == started and pool.alive == alive  # no worker started again
    assert pool.alive == 0  # closing the pipeline stopped them
    assert parsed == [3, 3]


def test_a_new_process_parses_only_the_changed_dag_files(
    tmp_path: Path, parsed: list[int]
) -> None:
    remote, workspace = setup(tmp_path)
    with GraphPipeline(workspace()) as first:
        first.sync()
    # each pipeline below starts with nothing in memory, as a new process does
    change(remote, "etl.py", chain_dag("etl", ["a", "b", "c"]))
    with GraphPipeline(workspace()) as second:
        [outcome] = second.sync()
        store = second.store
        assert [len(t) for t in [store.graph("etl").tasks, store.graph("other").tasks]] == [3, 1]
        assert [e.path for e in store.import_errors(REPO, outcome.version_id)] == ["broken.py"]
    change(remote, "lib/dagshape.py", DAGSHAPE + b"\n# a helper changed\n")
    with GraphPipeline(workspace()) as third:
        third.sync()
    assert parsed == [3, 1, 3]  # only etl.py; then everything, a helper having changed


def test_a_kept_extraction_is_not_used_when_damaged_or_made_otherwise(
    tmp_path: Path, parsed: list[int]
) -> None:
    remote, workspace = setup(tmp_path)
    with GraphPipeline(workspace()) as first:
        first.sync()
    document = carryover.document_path(first.workspace.cache.root, REPO)
    assert document.exists()
    document.write_text("{not json")
    change(remote, "etl.py", chain_dag("etl", ["a", "c"]))
    with GraphPipeline(workspace()) as second:
        second.sync()  # damaged: everything runs, and a good document is written again
    change(remote, "etl.py", chain_dag("etl", ["a", "d"]))
    with GraphPipeline(workspace(), extractors=["dag-shape", "tests.graphs.plugin_extractor:"
                                                "workflows"]) as third:
        third.sync()  # other extractors: everything runs
    change(remote, "etl.py", chain_dag("etl", ["a", "e"]))
    with GraphPipeline(workspace(), extractors=["dag-shape", "tests.graphs.plugin_extractor:"
                                                "workflows"]) as fourth:
        fourth.sync()
    assert parsed == [3, 3, 3, 1]


def test_a_carried_graph_is_searched_again_for_a_secret_known_since(
    tmp_path: Path, parsed: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, workspace = setup(tmp_path)
    change(remote, "named.py", chain_dag("named", ["carried-sekrit-42"]))
    with GraphPipeline(workspace()) as pipeline:
        pipeline.sync()
        change(remote, "etl.py", chain_dag("etl", ["a", "c"]))
        [kept] = pipeline.sync()  # the same secrets: the carried graph is recorded again
        store = pipeline.store
        assert [e.path for e in store.import_errors(REPO, kept.version_id)] == ["broken.py"]
        # the value becomes a secret this process knows: the carried graph must not be
        # recorded again, as a full parse would not record it
        monkeypatch.setenv("DEPLOY_TOKEN", "carried-sekrit-42")
        change(remote, "etl.py", chain_dag("etl", ["a", "d"]))
        [outcome] = pipeline.sync()
        errors = {e.path: e.message for e in store.import_errors(REPO, outcome.version_id)}
        assert sorted(errors) == ["broken.py", "named.py"]
        assert "holds a secret" in errors["named.py"]
        assert [r.version.dag_id for r in outcome.extraction.results] == ["etl", "other"]
    assert parsed == [4, 1, 1]
