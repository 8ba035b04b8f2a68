"""``dagfetch sync``: once, or ``--watch`` until interrupted; with ``--extract``,
``--publish`` or ``--follow`` it goes through the graph store's pipeline instead.

``--json`` prints one JSON array for a one-shot sync and JSON Lines (one compact object per
repository result, each round, flushed) with ``--watch``, so a consumer can read a watch
line by line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from dagfetch.cli.app import (
    EXIT_CONFIG,
    EXIT_SYNC_FAILED,
    State,
    complete_repo_ids,
    emit,
    errors_as_exit_codes,
    json_option,
    pass_state,
)

if TYPE_CHECKING:
    from dagfetch.graphs.pipeline import RepoOutcome
    from dagfetch.models import SyncResult
    from dagfetch.sync import SyncObserver


@click.command()
@click.argument("repos", nargs=-1, shell_complete=complete_repo_ids)
@click.option("--watch", is_flag=True, help="Keep syncing, each repository every refresh_interval.")
@click.option(
    "--extract",
    is_flag=True,
    help="Then parse new versions and record their DAG "
    "graphs in the graph store (see `dagfetch graph`).",
)
@click.option(
    "--publish",
    is_flag=True,
    help="With --extract: publish the synced versions for nodes that sync with --follow.",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Fetch the versions the leading node published in the graph store, not the newest.",
)
@click.option(
    "--extractor",
    "extractors",
    multiple=True,
    metavar="NAME",
    help="With --extract: parse DAG files with this graph extractor (repeatable; `airflow` "
    "with dagfetch-airflow installed). Default: the manifest's `extractors`, else dag-shape.",
)
@json_option
@pass_state
def sync(
    state: State,
    repos: tuple[str, ...],
    watch: bool,
    extract: bool,
    publish: bool,
    follow: bool,
    extractors: tuple[str, ...],
    as_json: bool,
) -> None:
    """Sync every repository of the manifest (or only REPOS)."""
    observer = _progress() if not as_json else None
    if extractors and not extract:
        raise click.UsageError("--extractor needs --extract")
    if extractors:
        _check_extractors(extractors)
    if extract or publish or follow:
        _graph_sync(state, list(repos) or None, publish=publish, follow=follow, watch=watch,
                    as_json=as_json, observer=observer, extractors=extractors)
        return
    with errors_as_exit_codes(state):
        workspace = state.workspace
        if watch:
            _until_interrupted(lambda stop: workspace.watch(
                stop=stop, observer=observer,
                on_results=lambda results: _print_results(results, as_json, json_lines=True)))
            return
        results = workspace.sync(list(repos) or None, observer=observer)
    _print_results(results, as_json)
    if any(r.config_error for r in results):
        sys.exit(EXIT_CONFIG)  # the others were synced all the same
    if any(r.error for r in results):
        sys.exit(EXIT_SYNC_FAILED)


def _progress() -> SyncObserver | None:
    """A progress bar on a terminal; nothing (and nothing imported) elsewhere."""
    if not sys.stderr.isatty():
        return None
    from dagfetch.cli.progress import ProgressBar

    return ProgressBar()


def _check_extractors(names: Sequence[str]) -> None:
    from dagfetch.errors import ConfigError
    from dagfetch.graphs.extract import resolve_extractors

    try:
        resolve_extractors(names)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--extractor") from None


def _until_interrupted(watch: Callable[[threading.Event], None]) -> None:
    """Run a watch loop until Ctrl-C, which ends it quietly (exit code 0)."""
    stop = threading.Event()
    try:
        watch(stop)
    except KeyboardInterrupt:
        stop.set()


def _result_json(r: SyncResult) -> dict[str, Any]:
    return {
        "repo_id": r.repo_id,
        "version_id": r.version_id,
        "changed": r.changed,
        "downloaded": r.downloaded,
        "downloaded_bytes": r.downloaded_bytes,
        "reused": r.reused,
        "previous_version_id": r.previous_version_id,
        "error": r.error,
    }


def _print_results(results: Sequence[SyncResult], as_json: bool, *,
                   json_lines: bool = False) -> None:
    def text() -> None:
        for r in results:
            if r.error:
                click.echo(f"{r.repo_id}: FAILED: {r.error}")
            elif r.changed:
                click.echo(
                    f"{r.repo_id}: {r.previous_version_id or '-'} -> {r.version_id} "
                    f"({r.downloaded} downloaded, {r.reused} reused)"
                )
            else:
                click.echo(f"{r.repo_id}: unchanged at {r.version_id}")

    emit(as_json, [_result_json(r) for r in results], text, json_lines=json_lines)


# -- the graph side: sync --extract / --publish / --follow --------------------------------------

def _graph_sync(
    state: State,
    repos: Sequence[str] | None,
    *,
    publish: bool,
    follow: bool,
    watch: bool,
    as_json: bool,
    observer: SyncObserver | None,
    extractors: Sequence[str] = (),
) -> None:
    """Sync then extract (and publish), or follow, through the graph pipeline."""
    from dagfetch.cli.graph_store import environment_options, graph_errors, pipeline_for

    database, prefix = environment_options()
    with graph_errors(state):
        pipeline = pipeline_for(state, database, prefix, extractors)
        if watch:
            _until_interrupted(lambda stop: pipeline.watch(
                stop=stop, publish=publish, follow=follow, observer=observer,
                on_outcomes=lambda outcomes: _print_outcomes(outcomes, as_json,
                                                             json_lines=True)))
            return
        if follow:
            outcomes = pipeline.follow(repos)
        else:
            outcomes = pipeline.sync(repos, publish=publish, observer=observer)
    _print_outcomes(outcomes, as_json)
    if any(not o.ok for o in outcomes):
        sys.exit(EXIT_SYNC_FAILED)


def _outcome_json(outcome: RepoOutcome) -> dict[str, Any]:
    extraction = outcome.extraction
    return {
        "repo_id": outcome.repo_id,
        "version_id": outcome.version_id,
        "error": outcome.error,
        "changed": bool(outcome.sync and outcome.sync.changed),
        "extracted": outcome.extracted,
        "dags": len(extraction.results) if extraction else 0,
        "new_graph_versions": sum(r.created for r in extraction.results) if extraction else 0,
        "import_errors": len(extraction.errors) if extraction else 0,
        "published": outcome.published,
        "followed": outcome.followed,
        "vanished": list(extraction.vanished) if extraction else [],
        "unstable": [item.dag_id for item in outcome.unstable],
    }


def _print_outcomes(outcomes: Sequence[RepoOutcome], as_json: bool, *,
                    json_lines: bool = False) -> None:
    rows = [_outcome_json(o) for o in outcomes]

    def text() -> None:
        for outcome, row in zip(outcomes, rows, strict=True):
            if outcome.error:
                click.echo(f"{outcome.repo_id}: FAILED: {outcome.error}")
                continue
            parts = [f"{outcome.repo_id}: at {outcome.version_id}"]
            if outcome.followed:
                parts.append("(followed the published version)")
            if outcome.extracted:
                parts.append(f"{row['dags']} DAGs, {row['new_graph_versions']} new graph "
                             f"versions, {row['import_errors']} import errors")
                if row["vanished"]:
                    parts.append(f"now inactive: {', '.join(row['vanished'])}")
            elif outcome.extraction is not None:
                parts.append("(graphs recorded before)")
            if outcome.published:
                parts.append("published")
            click.echo("  ".join(parts))

    emit(as_json, rows, text, json_lines=json_lines)


COMMANDS: tuple[click.Command, ...] = (sync,)
