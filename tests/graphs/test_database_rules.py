"""Which database the commands open, and who may change its schema.

The rule: the default SQLite store under the cache root is created on first use by any
command; a configured database (``--database``, ``$DAGFETCH_DATABASE``, the manifest's
``database``) is only changed by ``dagfetch db upgrade``, and every command that finds it
behind says so with the same message.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from dagfetch.cli import main
from dagfetch.graphs import GraphStore, SchemaNotReadyError
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.manifest import parse_manifest
from dagfetch.testing import LocalRemote
from dagfetch.workspace import Workspace
from tests.graphs.dagfiles import chain_dag, repo_files

BEHIND = "has no graph store tables"
HINT = "run `dagfetch db upgrade`"


def run(args: list[str], code: int = 0, cwd: Path | None = None) -> Result:
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code == code, result.output
    return result


def tables_in(path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A manifest in its own folder naming a relative SQLite database."""
    remote = LocalRemote(tmp_path / "remote")
    for path, data in repo_files(etl=chain_dag("etl", ["a", "b"])).items():
        remote.write(path, data)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "dagfetch.toml").write_text(
        'database = "sqlite:///state/graphs.db"\n\n'
        f'[dag_repositories.dags]\nurl = "{remote.url}"\n')
    return folder


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///graphs.db", "sqlite:///{base}/graphs.db"),
    ("sqlite:///state/g.db?timeout=5", "sqlite:///{base}/state/g.db?timeout=5"),
    ("sqlite+pysqlite:///g.db", "sqlite+pysqlite:///{base}/g.db"),
    ("sqlite:////abs/g.db", "sqlite:////abs/g.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_a_relative_sqlite_database_resolves_against_the_manifest_folder(
    tmp_path: Path, url: str, expected: str
) -> None:
    manifest = parse_manifest({"database": url, "dag_repositories": {"r": {"url": "/x"}}},
                              base_dir=tmp_path)
    assert manifest.database == expected.format(base=tmp_path.resolve())


def test_the_cli_opens_the_manifests_database_from_any_working_directory(
    project: Path, tmp_path: Path
) -> None:
    manifest = str(project / "dagfetch.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run(["--manifest", manifest, "db", "upgrade"], cwd=elsewhere)
    assert (project / "state" / "graphs.db").exists()
    run(["--manifest", manifest, "--home", str(tmp_path / "home"), "sync", "--extract"],
        cwd=elsewhere)
    listed = run(["--manifest", manifest, "graph", "list"], cwd=elsewhere).output
    assert "etl  version 1" in listed
    # no second, empty database appeared where the command ran
    assert list(elsewhere.iterdir()) == []


def test_a_reading_command_never_creates_a_configured_schema(project: Path) -> None:
    base = ["--manifest", str(project / "dagfetch.toml")]
    for command in (["graph", "list"], ["errors"], ["graph", "history", "etl"],
                    ["runs", "list"], ["graph", "check"]):
        result = run([*base, *command], code=4)
        assert BEHIND in result.output and HINT in result.output, command
    # not even an empty file
    assert not (project / "state" / "graphs.db").exists()


def test_every_command_says_the_same_thing_about_a_schema_behind(
    project: Path, tmp_path: Path
) -> None:
    db = project / "state" / "graphs.db"
    db.parent.mkdir()
    sa.create_engine(f"sqlite:///{db}").connect().close()  # an empty database file
    base = ["--manifest", str(project / "dagfetch.toml"), "--home", str(tmp_path / "home")]
    messages = {
        " ".join(command): run([*base, *command], code=4).output.strip()
        for command in (["graph", "list"], ["sync", "--extract"], ["runs", "pin", "r", "etl"],
                        ["graph", "gc"], ["errors"])
    }
    assert len(set(messages.values())) == 1, messages
    assert BEHIND in next(iter(messages.values()))
    assert tables_in(db) == []
    run([*base, "db", "upgrade"])
    run([*base, "sync", "--extract"])


def test_the_default_sqlite_store_is_created_on_first_use_by_any_command(
    tmp_path: Path, project: Path
) -> None:
    (project / "dagfetch.toml").write_text(
        (project / "dagfetch.toml").read_text().replace(
            'database = "sqlite:///state/graphs.db"\n', ""))
    for i, command in enumerate((["graph", "list"], ["errors"], ["runs", "list"],
                                 ["graph", "check"])):
        home = tmp_path / f"home{i}"
        run(["--manifest", str(project / "dagfetch.toml"), "--home", str(home), *command])
        assert "dagfetch_dag" in tables_in(home / ".dagfetch" / "graphs.sqlite3")


def test_the_pipeline_follows_the_same_rule(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    url = f"sqlite:///{tmp_path / 'configured.db'}"
    manifest = parse_manifest({"database": url, "dag_repositories": {"r": {"url": remote.url}}})
    with pytest.raises(SchemaNotReadyError, match="dagfetch db upgrade"):
        GraphPipeline(Workspace(manifest, cache_root=tmp_path / "cache"))
    assert not (tmp_path / "configured.db").exists()
    GraphStore(url).close()  # an explicit upgrade, as `dagfetch db upgrade` does
    GraphPipeline(Workspace(manifest, cache_root=tmp_path / "cache")).store.close()
    # the default store under the cache root is created on first use
    default = parse_manifest({"dag_repositories": {"r": {"url": remote.url}}})
    store = GraphPipeline(Workspace(default, cache_root=tmp_path / "cache2")).store
    assert store.latest_all() == []
