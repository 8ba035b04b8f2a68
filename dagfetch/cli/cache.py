"""Commands over the local cache: ``status``, ``versions``, ``path``, ``pin``, ``unpin``,
``gc``, ``verify``, and ``plugins`` (the URL schemes the cache can be filled from)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any

import click

from dagfetch.cli.app import (
    EXIT_NOT_FOUND,
    EXIT_SYNC_FAILED,
    State,
    complete_repo_ids,
    emit,
    errors_as_exit_codes,
    fail,
    json_option,
    pass_state,
)


def _max_age(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from dagfetch.manifest import parse_duration

    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise click.BadParameter(f"{value!r} is not a positive duration (like 90, 30s, 5m, 1h)")
    return seconds


def _unhealthy(row: Any, max_age: float | None, now: datetime) -> str | None:
    """Why a repository fails the health check, or None: its last sync failed, or (with
    ``max_age``) it never succeeded or its last success is older than that."""
    if row.last_error:
        return "the last sync failed"
    if max_age is None:
        return None
    if row.last_success_at is None:
        return "never synced"
    age = (now - datetime.fromisoformat(row.last_success_at)).total_seconds()
    if age > max_age:
        return f"last success {age:.0f} s ago, more than --max-age {max_age:g} s"
    return None


@click.command()
@click.option("--max-age", callback=_max_age, metavar="DURATION",
              help="Also fail when a repository's last success is older than this "
              "(90, 30s, 5m, 1h), or it never synced.")
@json_option
@pass_state
def status(state: State, max_age: float | None, as_json: bool) -> None:
    """Each repository's current version, last check, last success and last error. Exits
    with 1 when a repository's last sync failed (or is older than --max-age), so a health
    check can run it."""
    with errors_as_exit_codes(state):
        rows = state.workspace.status()
    now = datetime.now(timezone.utc)
    problems = {s.repo_id: _unhealthy(s, max_age, now) for s in rows}

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
            if problems[s.repo_id]:
                click.echo(f"  UNHEALTHY:     {problems[s.repo_id]}")

    emit(as_json, [{**s.to_json(), "healthy": problems[s.repo_id] is None} for s in rows], text)
    if any(problems.values()):
        sys.exit(EXIT_SYNC_FAILED)


@click.command()
@click.argument("repo", shell_complete=complete_repo_ids)
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


@click.command()
@click.argument("repo", shell_complete=complete_repo_ids)
@click.argument("version", required=False)
@click.option("--origin-fallback", is_flag=True,
              help="With a team cache: fetch a version it lacks from the origin.")
@json_option
@pass_state
def path(state: State, repo: str, version: str | None, origin_fallback: bool,
         as_json: bool) -> None:
    """Print the folder of REPO's current VERSION (fetching a missing one if possible: from
    the team cache when the manifest has one, else from the origin)."""
    with errors_as_exit_codes(state):
        workspace = state.workspace
        workspace.origin_fallback = origin_fallback
        folder = workspace.path(repo, version)
    # a version's folder is named by its id (<root>/<repo_id>/<version_id>, docs/cache.md):
    # the id of the current version comes from the folder resolved, never a second look
    data = {"repo_id": repo, "version_id": folder.name, "path": str(folder)}
    emit(as_json, data, lambda: click.echo(str(folder)))


@click.command()
@click.argument("repo", shell_complete=complete_repo_ids)
@click.argument("version")
@click.option("--holder", default="cli", show_default=True, help="Who holds the pin.")
@json_option
@pass_state
def pin(state: State, repo: str, version: str, holder: str, as_json: bool) -> None:
    """Keep VERSION of REPO through gc until unpinned."""
    with errors_as_exit_codes(state):
        folder = state.workspace.pin(repo, version, holder)
    data = {"repo_id": repo, "version_id": version, "holder": holder, "path": str(folder)}
    emit(as_json, data, lambda: click.echo(str(folder)))


@click.command()
@click.argument("repo", shell_complete=complete_repo_ids)
@click.argument("version")
@click.option("--holder", default="cli", show_default=True)
@json_option
@pass_state
def unpin(state: State, repo: str, version: str, holder: str, as_json: bool) -> None:
    """Release a pin taken with `dagfetch pin`."""
    with errors_as_exit_codes(state):
        if not state.workspace.unpin(repo, version, holder):
            fail(f"{repo}: version {version} is not pinned by {holder!r}", EXIT_NOT_FOUND)
    # nothing to say on success, as before; --json says what was released
    emit(as_json, {"repo_id": repo, "version_id": version, "holder": holder}, lambda: None)


@click.command()
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


@click.command()
@click.argument("repo", required=False)
@click.option("--repair", is_flag=True,
              help="Remove what is bad; fetch the versions again, or evict those that cannot be.")
@json_option
@pass_state
def verify(state: State, repo: str | None, repair: bool, as_json: bool) -> None:
    """Hash every file of the kept versions (of REPO, or all) against its record; name each
    bad one. Exits 1 when something bad is left."""
    with errors_as_exit_codes(state):
        report = state.workspace.verify(repo, repair=repair)

    def text() -> None:
        for b in report.bad:
            click.echo(f"BAD {b.repo_id} {b.version_id} {b.path}: {b.problem}")
        for repo_id, version_id in report.repaired:
            click.echo(f"repaired {repo_id} {version_id} (fetched again)")
        for repo_id, version_id in report.dropped:
            click.echo(f"dropped {repo_id} {version_id} (evicted: the remote keeps no copy)")
        hint = "" if report.ok or repair else "; `dagfetch verify --repair` removes them"
        click.echo(
            f"{report.checked_objects} contents of {report.checked_versions} versions checked, "
            f"{len(report.bad)} bad files{hint}"
        )

    emit(as_json, report.to_json(), text)
    if not report.ok:
        sys.exit(EXIT_SYNC_FAILED)


@click.command()
@json_option
def plugins(as_json: bool) -> None:
    """URL schemes, the class serving each, the distribution that provides it, and whether it
    is usable here (what is missing, and what to install, when it is not)."""
    from dagfetch.registry import Registry

    registry = Registry()
    rows: list[dict[str, Any]] = []
    for scheme, claims in sorted(registry.providers().items()):
        for p in claims:
            missing = p.missing()
            rows.append({
                "scheme": scheme,
                "value": p.value,
                "distribution": p.distribution,
                "version": p.version,
                "conflict": len(claims) > 1,
                "usable": not missing,
                "missing": missing,
                "install": p.install_hint if missing else None,
            })

    def text() -> None:
        width = max((len(r["scheme"]) for r in rows), default=6)
        for r in rows:
            note = "  (CONFLICT: set scheme_providers)" if r["conflict"] else ""
            if r["missing"]:
                note += f"  MISSING {', '.join(r['missing'])}: {r['install']}"
            click.echo(
                f"{r['scheme']:<{width}}  {'usable ' if r['usable'] else 'missing'}  "
                f"{r['value']}  [{r['distribution']} {r['version']}]{note}"
            )

    emit(as_json, rows, text)


COMMANDS: tuple[click.Command, ...] = (status, versions, path, pin, unpin, gc, verify, plugins)
