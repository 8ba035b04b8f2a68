"""The ``dagfetch`` command: the same main jobs as the Python API.

Exit codes scripts can rely on:

==  =====================================================================
0   success
1   at least one repository failed to sync (the others were synced)
2   bad usage or configuration: manifest, connection, unknown scheme
3   not found: no such version in the cache, nor on the remote
4   any other dagfetch error (cache unusable, lock timeout, ...)
==  =====================================================================
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from dagfetch.errors import (
    ConfigError,
    DagfetchError,
    RegistryError,
    VersionNotFoundError,
    VersionUnavailableError,
)
from dagfetch.models import SyncResult
from dagfetch.redact import mask
from dagfetch.workspace import Workspace

EXIT_SYNC_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_FOUND = 3
EXIT_ERROR = 4


class State:
    """Options of the top-level group; the workspace is built on first use."""

    def __init__(self, manifest: str | None, home: str | None, debug: bool) -> None:
        self.manifest = manifest
        self.home = home
        self.debug = debug
        self._workspace: Workspace | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace.from_manifest(self.manifest, cache_root=self.home)
        return self._workspace


pass_state = click.make_pass_decorator(State)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"dagfetch: error: {mask(message)}", err=True)
    sys.exit(code)


@contextmanager
def errors_as_exit_codes(state: State) -> Iterator[None]:
    """Turn dagfetch errors into one clear line and an exit code; tracebacks only on --debug."""
    try:
        yield
    except DagfetchError as exc:
        if state.debug:
            raise
        if isinstance(exc, (ConfigError, RegistryError)):
            fail(str(exc), EXIT_CONFIG)
        if isinstance(exc, (VersionNotFoundError, VersionUnavailableError)):
            fail(str(exc), EXIT_NOT_FOUND)
        fail(str(exc), EXIT_ERROR)


def emit(as_json: bool, data: Any, text: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        text()


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--manifest",
    "-m",
    envvar="DAGFETCH_MANIFEST",
    type=click.Path(dir_okay=False),
    help="Manifest file (default: dagfetch.toml or dagfetch.json here).",
)
@click.option(
    "--home",
    envvar="DAGFETCH_HOME",
    type=click.Path(file_okay=False),
    help="Cache root (default: $DAGFETCH_HOME or the per-user cache folder).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug logs).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="dagfetch")
@click.pass_context
def main(
    ctx: click.Context, manifest: str | None, home: str | None, verbose: int, debug: bool
) -> None:
    """Fetch DAG code from remote repositories into a versioned local cache."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = State(manifest, home, debug)


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


def _print_results(results: list[SyncResult], as_json: bool) -> None:
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

    emit(as_json, [_result_json(r) for r in results], text)


@main.command()
@click.argument("repos", nargs=-1)
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
@json_option
@pass_state
def sync(
    state: State,
    repos: tuple[str, ...],
    watch: bool,
    extract: bool,
    publish: bool,
    follow: bool,
    as_json: bool,
) -> None:
    """Sync every repository of the manifest (or only REPOS)."""
    from dagfetch.cli.progress import ProgressBar

    observer = ProgressBar() if ProgressBar.wanted() and not as_json else None
    if extract or publish or follow:  # the graph store's part: dagfetch/cli/graph.py
        from dagfetch.cli.graph import pipeline_sync

        pipeline_sync(
            state,
            list(repos) or None,
            publish=publish,
            follow=follow,
            watch=watch,
            as_json=as_json,
            observer=observer,
        )
        return
    with errors_as_exit_codes(state):
        ws = state.workspace
        if watch:
            stop = threading.Event()
            try:
                ws.watch(
                    stop=stop, observer=observer, on_results=lambda rs: _print_results(rs, as_json)
                )
            except KeyboardInterrupt:
                stop.set()
            return
        results = ws.sync(list(repos) or None, observer=observer)
    _print_results(results, as_json)
    if any(r.error for r in results):
        sys.exit(EXIT_SYNC_FAILED)


@main.command()
@json_option
@pass_state
def status(state: State, as_json: bool) -> None:
    """Each repository's current version, last check, last success and last error."""
    with errors_as_exit_codes(state):
        rows = state.workspace.status()

    def text() -> None:
        for s in rows:
            click.echo(f"{s.repo_id}  {s.url}")
            click.echo(f"  current:       {s.current or '(never synced)'}  ({s.versions} kept)")
            click.echo(f"  last check:    {s.last_check_at or '-'}")
            click.echo(f"  last success:  {s.last_success_at or '-'}")
            if s.last_error:
                click.echo(
                    f"  last error:    {s.last_error.get('at')}: {s.last_error.get('message')}"
                )

    emit(as_json, [s.to_json() for s in rows], text)


@main.command()
@click.argument("repo")
@json_option
@pass_state
def versions(state: State, repo: str, as_json: bool) -> None:
    """Versions of REPO in the cache, newest first, and whether evicted ones can come back."""
    with errors_as_exit_codes(state):
        entries = state.workspace.versions(repo)
    rows: list[dict[str, Any]] = [
        {
            "version_id": e.version.version_id,
            "fetched_at": e.version.fetched_at.isoformat(),
            "files": len(e.version.files),
            "bytes": e.version.total_size,
            "current": e.current,
            "present": e.present,
            "materialized": e.materialized,
            "pinned_by": list(e.pinned_by),
            "refetchable": e.refetchable,
            "source_url": e.version.source_url,
        }
        for e in entries
    ]

    def text() -> None:
        if not rows:
            click.echo(f"{repo}: no versions yet")
        for r in rows:
            marks = ["current"] if r["current"] else []
            if r["pinned_by"]:
                marks.append("pinned by " + ", ".join(r["pinned_by"]))
            if r["present"] and not r["materialized"]:
                marks.append("stored (tree rebuilt locally on use)")
            if not r["present"]:
                marks.append(
                    "evicted, can be re-fetched"
                    if r["refetchable"]
                    else "evicted, CANNOT be re-fetched (the remote keeps no history)"
                )
            click.echo(
                f"{r['version_id']}  {r['fetched_at']}  {r['files']} files  "
                f"{' | '.join(marks)}".rstrip()
            )

    emit(as_json, rows, text)


@main.command()
@click.argument("repo")
@click.argument("version", required=False)
@pass_state
def path(state: State, repo: str, version: str | None) -> None:
    """Print the folder of REPO's current VERSION (fetching an evicted one again if possible)."""
    with errors_as_exit_codes(state):
        click.echo(str(state.workspace.path(repo, version)))


@main.command()
@click.argument("repo")
@click.argument("version")
@click.option("--holder", default="cli", show_default=True, help="Who holds the pin.")
@pass_state
def pin(state: State, repo: str, version: str, holder: str) -> None:
    """Keep VERSION of REPO through gc until unpinned."""
    with errors_as_exit_codes(state):
        click.echo(str(state.workspace.pin(repo, version, holder)))


@main.command()
@click.argument("repo")
@click.argument("version")
@click.option("--holder", default="cli", show_default=True)
@pass_state
def unpin(state: State, repo: str, version: str, holder: str) -> None:
    """Release a pin taken with `dagfetch pin`."""
    with errors_as_exit_codes(state):
        if not state.workspace.unpin(repo, version, holder):
            fail(f"{repo}: version {version} is not pinned by {holder!r}", EXIT_NOT_FOUND)


@main.command()
@click.option("--dry-run", is_flag=True, help="Say what would go, remove nothing.")
@click.option(
    "--grace",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Keep the trees of versions retired less than this ago (default 600).",
)
@json_option
@pass_state
def gc(state: State, dry_run: bool, grace: float | None, as_json: bool) -> None:
    """Evict old versions (keeping current, the newest keep_versions and pinned ones), store
    the trees of kept versions nobody reads (rebuilt locally on use), and remove file
    contents no kept version uses."""
    with errors_as_exit_codes(state):
        report = state.workspace.gc(dry_run=dry_run, grace_seconds=grace)
    data = {
        "evicted": [list(e) for e in report.evicted],
        "stored": [list(e) for e in report.stored],
        "objects_removed": report.objects_removed,
        "bytes_freed": report.bytes_freed,
        "dry_run": report.dry_run,
    }

    def text() -> None:
        verb = "would evict" if dry_run else "evicted"
        for repo_id, version_id in report.evicted:
            click.echo(f"{verb} {repo_id} {version_id}")
        for repo_id, version_id in report.stored:
            click.echo(
                f"{'would store' if dry_run else 'stored'} {repo_id} {version_id} "
                "(tree removed; rebuilt from local contents on use)"
            )
        click.echo(
            f"{report.objects_removed} objects, {report.bytes_freed} bytes "
            f"{'would be ' if dry_run else ''}freed"
        )

    emit(as_json, data, text)


@main.command()
@json_option
@pass_state
def plugins(state: State, as_json: bool) -> None:
    """URL schemes, the class serving each, and the distribution that provides it."""
    from dagfetch.registry import Registry

    registry = Registry()
    rows: list[dict[str, Any]] = [
        {
            "scheme": scheme,
            "value": p.value,
            "distribution": p.distribution,
            "version": p.version,
            "conflict": len(claims) > 1,
        }
        for scheme, claims in sorted(registry.providers().items())
        for p in claims
    ]

    def text() -> None:
        width = max((len(r["scheme"]) for r in rows), default=6)
        for r in rows:
            note = "  (CONFLICT: set scheme_providers)" if r["conflict"] else ""
            click.echo(
                f"{r['scheme']:<{width}}  {r['value']}  [{r['distribution']} {r['version']}]{note}"
            )

    emit(as_json, rows, text)


def _register_extensions() -> None:
    """Command groups that live in their own modules (graph store, runs)."""
    for module in ("dagfetch.cli.graph",):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(main)


_register_extensions()

__all__ = ["main"]


if __name__ == "__main__":  # pragma: no cover
    main()
