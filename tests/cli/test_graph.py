"""The graph store's commands, run through click as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from dagfetch.cli import main
from dagfetch.graphs.database import head_revision
from dagfetch.testing import LocalRemote
from tests.cli.test_cli import assert_documented
from tests.graphs.dagfiles import chain_dag, repo_files


@pytest.fixture
def setup(tmp_path: Path) -> tuple[LocalRemote, list[str]]:
    remote = LocalRemote(tmp_path / "remote")
    for path, data in repo_files(etl=chain_dag("etl", ["extract", "load"]),
                                 broken=b"raise RuntimeError('no config')\n").items():
        remote.write(path, data)
    manifest = tmp_path / "dagfetch.toml"
    manifest.write_text(f'[dag_repositories.dags]\nurl = "{remote.url}"\n')
    return remote, ["--manifest", str(manifest), "--home", str(tmp_path / "home")]


def run(args: list[str], code: int = 0) -> Result:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_sync_extract_then_read_the_graphs(setup: tuple[LocalRemote, list[str]]) -> None:
    remote, base = setup
    out = run([*base, "sync", "--extract"]).output
    assert "1 DAGs, 1 new graph versions, 1 import errors" in out
    assert "graphs recorded before" in run([*base, "sync", "--extract"]).output

    remote.write("etl.py", chain_dag("etl", ["extract", "transform", "load"]))
    [row] = json.loads(run([*base, "sync", "--extract", "--json"]).output)
    assert (row["extracted"], row["new_graph_versions"]) == (True, 1)

    listed = json.loads(run([*base, "graph", "list", "--json"]).output)
    assert [(r["dag_id"], r["number"], r["task_count"]) for r in listed] == [("etl", 2, 3)]

    text = run([*base, "graph", "show", "etl", "--version", "1"]).output
    assert "etl  version 1" in text and "extract [BashOperator] -> load" in text
    dot = run([*base, "graph", "show", "etl", "--format", "dot"]).output
    assert '"extract" -> "transform";' in dot and dot.startswith('digraph "etl"')
    mermaid = run([*base, "graph", "show", "etl", "--format", "mermaid"]).output
    assert mermaid.startswith("flowchart LR") and "t0 --> t2" in mermaid
    shown = json.loads(run([*base, "graph", "show", "etl", "--format", "json"]).output)
    assert shown["edges"] == [["extract", "transform"], ["transform", "load"]]

    history = json.loads(run([*base, "graph", "history", "etl", "--json"]).output)
    assert [(h["number"], h["latest"], h["sources"][0]["path"]) for h in history] == [
        (1, False, "etl.py"), (2, True, "etl.py")]
    diff = run([*base, "graph", "diff", "etl", "1", "2"]).output
    assert "+ task transform" in diff and "- edge extract -> load" in diff

    errors = run([*base, "errors"]).output
    assert "broken.py" in errors and "RuntimeError: no config" in errors


def test_runs_pin_and_show(setup: tuple[LocalRemote, list[str]]) -> None:
    remote, base = setup
    run([*base, "sync", "--extract"])
    pinned = json.loads(run([*base, "runs", "pin", "manual__1", "etl", "--json"]).output)
    assert pinned["version"] == 1
    remote.write("etl.py", chain_dag("etl", ["only"]))
    run([*base, "sync", "--extract"])
    shown = run([*base, "runs", "show", "manual__1"]).output
    assert "graph version 1" in shown and "extract [BashOperator] -> load" in shown
    # the run's code is pinned in the cache too
    versions = json.loads(run([*base, "versions", "dags", "--json"]).output)
    assert [v["pinned_by"] for v in versions if v["pinned_by"]] == [["run-etl-manual__1"]]
    assert json.loads(run([*base, "graph", "gc", "--keep", "1", "--json"]).output) == {
        "removed": [], "dry_run": False, "source_versions": [], "import_errors": 0,
        "links": 0, "forgotten": []}


def test_not_found_is_exit_code_3_with_one_line(setup: tuple[LocalRemote, list[str]]) -> None:
    _, base = setup
    run([*base, "sync", "--extract"])
    result = run([*base, "graph", "show", "nope"], code=3)
    assert "no DAG 'nope'" in result.output and "Traceback" not in result.output
    assert "no run 'r1'" in run([*base, "runs", "show", "r1"], code=3).output


def test_db_upgrade_on_a_named_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    out = run(["db", "upgrade", "--database", url, "--table-prefix", "af_dagfetch_"]).output
    assert f"is at schema {head_revision()}" in out
    # a reading command on a database without the schema points at `db upgrade`
    other = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run(["graph", "list", "--database", other], code=4)
    assert "dagfetch db upgrade" in result.output


def test_follow_without_anything_published_fails_clearly(
    setup: tuple[LocalRemote, list[str]]
) -> None:
    _, base = setup
    result = run([*base, "sync", "--follow"], code=1)
    assert "no version published yet" in result.output


def test_every_graph_command_prints_its_documented_json(
    setup: tuple[LocalRemote, list[str]], tmp_path: Path
) -> None:
    remote, base = setup

    def data(*args: str) -> Any:
        return json.loads(run([*base, *args, "--json"]).output)

    assert_documented("sync --extract", data("sync", "--extract"))
    remote.write("etl.py", chain_dag("etl", ["extract", "transform", "load"]))
    run([*base, "sync", "--extract"])
    assert_documented("graph list", data("graph", "list"))
    shown = data("graph", "show", "etl")
    assert_documented("graph show", shown)
    assert_documented("graph list", shown["version"])
    assert shown["version"]["number"] == 2
    assert_documented("graph history", data("graph", "history", "etl"))
    assert_documented("graph diff", data("graph", "diff", "etl", "1", "2"))
    assert_documented("runs pin", data("runs", "pin", "manual__1", "etl"))
    run_shown = data("runs", "show", "manual__1")
    assert_documented("runs show", run_shown)
    assert {"dag_id", "tasks", "edges"} == set(run_shown["graph"])
    assert_documented("runs list", data("runs", "list"))
    assert_documented("runs release", data("runs", "release", "manual__1"))
    assert_documented("errors", data("errors"))
    assert_documented("graph gc", data("graph", "gc", "--dry-run"))
    upgraded = json.loads(run(["db", "upgrade", "--database", f"sqlite:///{tmp_path / 'm.db'}",
                               "--json"]).output)
    assert_documented("db upgrade", upgraded)
    assert (upgraded["prefix"], upgraded["revision"]) == ("dagfetch_", head_revision())


@pytest.mark.parametrize("command", [["graph", "show", "etl"], ["runs", "show", "manual__1"]])
def test_json_is_format_json_and_contradicting_it_is_a_usage_error(
    setup: tuple[LocalRemote, list[str]], command: list[str]
) -> None:
    _, base = setup
    run([*base, "sync", "--extract"])
    run([*base, "runs", "pin", "manual__1", "etl"])
    as_json = run([*base, *command, "--json"]).output
    assert as_json == run([*base, *command, "--format", "json"]).output
    assert as_json == run([*base, *command, "--format", "json", "--json"]).output
    assert json.loads(as_json)["edges" if command[0] == "graph" else "graph"]
    for other in ("dot", "mermaid", "text"):
        result = run([*base, *command, "--json", "--format", other], code=2)
        assert f"--json means --format json; it contradicts --format {other}" in result.output
        assert "Usage:" in result.output
    # without either, text as before
    assert run([*base, *command]).output == run([*base, *command, "--format", "text"]).output


def test_sync_watch_extract_json_prints_json_lines(
    setup: tuple[LocalRemote, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagfetch.graphs.pipeline import GraphPipeline

    remote, base = setup
    manifest = tmp_path / "watch.toml"
    manifest.write_text(f'[dag_repositories.dags]\nurl = "{remote.url}"\n'
                        "refresh_interval = 0.1\n")
    watch = GraphPipeline.watch
    monkeypatch.setattr(GraphPipeline, "watch",
                        lambda self, **options: watch(self, **options, max_rounds=2))
    out = run(["--manifest", str(manifest), *base[2:], "sync", "--watch", "--extract",
               "--json"]).output
    first, second = (json.loads(line) for line in out.splitlines())
    for row in (first, second):
        assert_documented("sync --extract", row)
    assert (first["extracted"], first["new_graph_versions"]) == (True, 1)
    assert (second["extracted"], second["changed"]) == (False, False)


CLOCKED = b"""import time
from lib.dagshape import DAG, BashOperator
dag = DAG("clocked")
start = BashOperator(dag, "start")
start >> BashOperator(dag, f"extract_{time.time_ns()}")
"""


def test_a_dag_gone_from_the_repository_is_listed_only_with_all(
    setup: tuple[LocalRemote, list[str]]
) -> None:
    remote, base = setup
    remote.write("other.py", chain_dag("other", ["a", "b"]))
    run([*base, "sync", "--extract"])
    remote.delete("other.py")
    out = run([*base, "sync", "--extract"]).output
    assert "now inactive: other" in out
    assert [r["dag_id"] for r in json.loads(run([*base, "graph", "list", "--json"]).output)] == [
        "etl"]
    listed = run([*base, "graph", "list", "--all"]).output
    assert "etl  version 1" in listed and "(inactive: gone from dags@" in listed
    assert "was in other.py" in listed
    rows = json.loads(run([*base, "graph", "list", "--all", "--json"]).output)
    assert_documented("graph list", rows)
    assert [(r["dag_id"], r["active"]) for r in rows] == [("etl", True), ("other", False)]
    assert rows[1]["vanished_in"]["path"] == "other.py"
    # still readable, and back when the file comes back
    assert "a [BashOperator] -> b" in run([*base, "graph", "show", "other"]).output
    remote.write("other.py", chain_dag("other", ["a", "b"]))
    [row] = json.loads(run([*base, "sync", "--extract", "--json"]).output)
    assert (row["vanished"], row["new_graph_versions"]) == ([], 0)
    assert len(json.loads(run([*base, "graph", "list", "--json"]).output)) == 2


def test_runs_list_and_release_from_the_command_line(
    setup: tuple[LocalRemote, list[str]]
) -> None:
    remote, base = setup
    run([*base, "sync", "--extract"])
    run([*base, "runs", "pin", "manual__1", "etl"])
    remote.write("etl.py", chain_dag("etl", ["only"]))
    run([*base, "sync", "--extract"])
    run([*base, "runs", "pin", "manual__2", "etl"])
    listed = json.loads(run([*base, "runs", "list", "--json"]).output)
    assert [(r["run_id"], r["version"], r["released_at"]) for r in listed] == [
        ("manual__2", 2, None), ("manual__1", 1, None)]
    assert "no runs pinned for DAG 'nope'" in run([*base, "runs", "list", "--dag", "nope"]).output
    out = run([*base, "runs", "release", "manual__1"]).output
    assert "run manual__1 of etl released; its code may now be evicted" in out
    # no holder name to guess: the cache lets the code go, the graph pin stays as history
    versions = json.loads(run([*base, "versions", "dags", "--json"]).output)
    assert [v["pinned_by"] for v in versions if v["pinned_by"]] == [["run-etl-manual__2"]]
    text = run([*base, "runs", "list", "--dag", "etl"]).output
    assert "run manual__1 of etl: graph version 1" in text and ", released " in text
    again = json.loads(run([*base, "runs", "release", "manual__1", "--json"]).output)
    assert again["unpinned"] is False and again["released_at"]
    assert "no run 'nope'" in run([*base, "runs", "release", "nope"], code=3).output


def test_an_unstable_dag_is_reported_by_check_and_sync(
    setup: tuple[LocalRemote, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    remote, base = setup
    remote.write("clocked.py", CLOCKED)
    assert "no unstable DAGs" in run([*base, "graph", "check"]).output
    rounds = []
    for n in range(5):  # a new version each round; clocked.py never changes
        remote.write("notes.txt", f"round {n}".encode())
        # stdout: the warning about the unstable DAG goes to stderr
        rounds.append(json.loads(run([*base, "sync", "--extract", "--json"]).stdout)[0])
    assert [r["unstable"] for r in rounds] == [[], [], [], ["clocked"], ["clocked"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("DAG clocked (dags:clocked.py) got a new graph in 4 of 4" in w for w in warnings)
    [found] = json.loads(run([*base, "graph", "check", "--json"]).output)
    assert_documented("graph check", found)
    assert (found["dag_id"], found["changes"], found["pairs"]) == ("clocked", 4, 4)
    assert "task ids added and removed in 4 of 4 changes" in found["what"][0]
    assert found["last"]["tasks_added"][0].startswith("extract_")
    text = run([*base, "graph", "check", "dags"]).output
    assert "clocked" in text and "'extract_" in text and "etl" not in text
