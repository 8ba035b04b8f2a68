"""Which graph extractors parse a repository: manifest `extractors` (top level and per
repository), the caller's choice (`sync --extractor`, GraphPipeline(extractors=...))."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dagfetch.cli import main
from dagfetch.errors import ManifestError
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.manifest import parse_manifest
from dagfetch.testing import LocalRemote, one_repository
from tests.graphs.dagfiles import chain_dag, repo_files

WORKFLOWS = "tests.graphs.plugin_extractor:workflows"  # a module:attr reference works as a name
FLOW = b"FLOW = {'kind': 'workflow', 'name': 'nightly', 'steps': {'a': [], 'b': ['a']}}\n"


@pytest.fixture
def remote(tmp_path: Path) -> LocalRemote:
    remote = LocalRemote(tmp_path / "remote")
    for path, data in {"flow.py": FLOW, **repo_files(etl=chain_dag("etl", ["x", "y"]))}.items():
        remote.write(path, data)
    return remote


def dag_ids(pipeline: GraphPipeline) -> set[str]:
    [outcome] = pipeline.sync()
    assert outcome.ok, outcome.error
    assert outcome.extraction is not None
    return {r.version.dag_id for r in outcome.extraction.results}


def test_manifest_fields_top_level_and_per_repository() -> None:
    manifest = parse_manifest({"extractors": ["airflow"], "dag_repositories": {
        "a": {"url": "memory://a"}, "b": {"url": "memory://b", "extractors": ["x", "y"]}}})
    assert manifest.extractors_for("a") == (("airflow",), "extractors")
    assert manifest.extractors_for("b") == (("x", "y"), "dag_repositories.b.extractors")


@pytest.mark.parametrize(("data", "field"), [
    ({"extractors": "airflow"}, "extractors"),
    ({"extractors": [""]}, "extractors"),
    ({"extractors": ["a", "a"]}, "extractors"),
    ({"repo": {"extractors": [1]}}, "dag_repositories.r.extractors"),
])
def test_a_malformed_extractors_field_is_named(data: dict[str, Any], field: str) -> None:
    entry: dict[str, Any] = {"url": "memory://r", **data.pop("repo", {})}
    with pytest.raises(ManifestError) as info:
        parse_manifest({"dag_repositories": {"r": entry}, **data})
    assert info.value.field == field


def test_the_repository_choice_wins_over_the_top_level_one(
    tmp_path: Path, remote: LocalRemote
) -> None:
    top = one_repository(remote.url, tmp_path, cache="c1", manifest={"extractors": [WORKFLOWS]})
    assert dag_ids(GraphPipeline(top)) == {"nightly"}
    both = one_repository(remote.url, tmp_path, cache="c2", manifest={"extractors": [WORKFLOWS]},
                          extractors=["dag-shape"])
    assert dag_ids(GraphPipeline(both)) == {"etl"}
    default = one_repository(remote.url, tmp_path, cache="c3")
    assert dag_ids(GraphPipeline(default)) == {"etl"}


def test_the_callers_choice_wins_over_the_manifest(tmp_path: Path, remote: LocalRemote) -> None:
    ws = one_repository(remote.url, tmp_path, extractors=["dag-shape"])
    assert dag_ids(GraphPipeline(ws, extractors=[WORKFLOWS, "dag-shape"])) == {"nightly", "etl"}


def test_an_unknown_name_in_the_manifest_fails_naming_the_field_before_fetching(
    tmp_path: Path, remote: LocalRemote
) -> None:
    ws = one_repository(remote.url, tmp_path, repo_id="dags", extractors=["no-such-extractor"])
    with pytest.raises(ManifestError, match="no graph extractor 'no-such-extractor'") as info:
        GraphPipeline(ws).sync()
    assert info.value.field == "dag_repositories.dags.extractors"
    assert ws.cache.current_id("dags") is None  # nothing was fetched


def cli(tmp_path: Path, remote: LocalRemote, *args: str) -> Any:
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.dags]\nurl = "{remote.url}"\n')
    return CliRunner().invoke(main, ["--manifest", str(manifest), "--home",
                                     str(tmp_path / "home"), "sync", *args])


def test_cli_extractor_option_is_repeatable(tmp_path: Path, remote: LocalRemote) -> None:
    result = cli(tmp_path, remote, "--extract", "--extractor", WORKFLOWS,
                 "--extractor", "dag-shape", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["dags"] == 2


def test_cli_unknown_extractor_and_extractor_without_extract_are_usage_errors(
    tmp_path: Path, remote: LocalRemote
) -> None:
    result = cli(tmp_path, remote, "--extract", "--extractor", "nope")
    assert result.exit_code == 2
    assert "--extractor" in result.output and "no graph extractor 'nope'" in result.output
    result = cli(tmp_path, remote, "--extractor", "dag-shape")
    assert result.exit_code == 2
    assert "--extractor needs --extract" in result.output
