"""Commands about the manifest itself: ``validate`` (is it right, without fetching) and
``init`` (a commented starter manifest that ``validate`` accepts)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from dagfetch.cli.app import (
    EXIT_CONFIG,
    EXIT_SYNC_FAILED,
    State,
    complete_repo_ids,
    emit,
    errors_as_exit_codes,
    fail,
    json_option,
    pass_state,
)
from dagfetch.errors import DagfetchError, ManifestError
from dagfetch.redact import mask

STARTER = '''\
# dagfetch manifest: which repositories of DAG code to fetch, and how.
# Reference: docs/manifest.md. Check it with `dagfetch validate` (add --connect to also
# list each remote once), then fetch with `dagfetch sync`.

# optional: a connections file for the conn_id values below (relative to this file)
# connections_file = "connections.toml"
# optional: the graph store's SQLAlchemy URL, for `dagfetch sync --extract`
# database = "sqlite:///dagfetch.db"

[dag_repositories.{repo_id}]
# Where the DAG files are: a folder (relative to this file), s3://bucket/prefix,
# gs://bucket/prefix, az://container/prefix, https://host/dags/ (an index page),
# git+https://host/org/repo.git, or any fsspec URL (simplecache::s3://bucket/prefix).
url = "{url}"
# conn_id = "aws_default"      # credentials: $DAGFETCH_CONN_<ID> or the connections file
# ref = "main"                 # git: branch, tag or commit
# subdir = "dags"              # only this folder of the repository
# include = ["**/*.py"]        # glob patterns of the files to take
# exclude = ["tests/**"]
refresh_interval = "1m"        # how often `sync --watch` checks for a new version
keep_versions = 5              # versions kept through `dagfetch gc` (with current and pinned)
# options = {{ concurrency = 16, retries = 3, timeout = 300 }}  # the backend's options
'''


@click.command()
@click.argument("repos", nargs=-1, shell_complete=complete_repo_ids)
@click.option("--connect", is_flag=True,
              help="Also list each remote once (no file is downloaded).")
@json_option
@pass_state
def validate(state: State, repos: tuple[str, ...], connect: bool, as_json: bool) -> None:
    """Check the manifest, its connections and each backend's options without fetching
    anything (every repository, or only REPOS); exit code 2 when one is wrong, 1 when
    --connect cannot list a remote."""
    with errors_as_exit_codes(state):
        workspace = state.workspace  # a manifest that does not parse: one error, exit 2
        specs = [workspace.manifest.get(r) for r in repos] or list(workspace.manifest.repositories)
    rows: list[dict[str, Any]] = []
    for spec in specs:
        row: dict[str, Any] = {"repo_id": spec.id, "ok": True, "error": None, "files": None,
                               "listed_in": None}
        try:
            fetcher = workspace.fetcher_for(spec)
        except DagfetchError as exc:
            row.update(ok=False, error=mask(str(exc)), stage="config")
            rows.append(row)
            continue
        try:
            if connect:
                started = time.monotonic()
                listing = fetcher.list()
                row.update(files=len(listing.files),
                           listed_in=round(time.monotonic() - started, 3))
        except DagfetchError as exc:
            row.update(ok=False, error=mask(str(exc)), stage="connect")
        finally:
            fetcher.close()
        rows.append(row)

    def text() -> None:
        for row in rows:
            if row["error"]:
                click.echo(f"{row['repo_id']}: INVALID: {row['error']}"
                           if row.get("stage") == "config"
                           else f"{row['repo_id']}: UNREACHABLE: {row['error']}")
            elif connect:
                click.echo(f"{row['repo_id']}: ok, {row['files']} files listed "
                           f"in {row['listed_in']:.2f} s")
            else:
                click.echo(f"{row['repo_id']}: ok")

    emit(as_json, [{k: v for k, v in r.items() if k != "stage"} for r in rows], text)
    if any(r.get("stage") == "config" for r in rows):
        raise SystemExit(EXIT_CONFIG)
    if any(r["error"] for r in rows):
        raise SystemExit(EXIT_SYNC_FAILED)


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", default="dags", show_default=True,
              help="The first repository's URL (a folder relative to the manifest, or any URL).")
@click.option("--repo-id", default="dags", show_default=True, help="The first repository's id.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_state
def init(state: State, path: Path | None, url: str, repo_id: str, force: bool) -> None:
    """Write a commented starter manifest to PATH (default: --manifest, else dagfetch.toml)."""
    target = (path or Path(state.manifest or "dagfetch.toml")).absolute()
    if target.suffix.lower() != ".toml":
        fail(f"{target}: the starter manifest is TOML; name it *.toml", EXIT_CONFIG)
    if target.exists() and not force:
        fail(f"{target}: already exists; pass --force to overwrite it", EXIT_CONFIG)
    text = STARTER.format(repo_id=repo_id, url=url.replace("\\", "\\\\").replace('"', '\\"'))
    from dagfetch.manifest import load_manifest

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp.toml")
    temporary.write_text(text, encoding="utf-8")
    try:
        load_manifest(temporary)
    except ManifestError as exc:  # a bad --url or --repo-id: the field named, nothing written
        temporary.unlink()
        fail(str(ManifestError(exc.field, exc.problem, source=str(target))), EXIT_CONFIG)
    temporary.replace(target)
    click.echo(f"wrote {target}; check it with: dagfetch --manifest {target} validate")


COMMANDS: tuple[click.Command, ...] = (validate, init)
