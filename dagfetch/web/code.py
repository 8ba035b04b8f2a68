"""The code side of the web server: repositories, their versions, a version's files, one
file's content, and what changed between two versions. Every function returns a document of
:mod:`dagfetch.web.schemas`, read from the cache (and, for extractions and publication, the
graph store); nothing is written, not even a stored version's tree (its contents are read
from the content store instead).

A file is named in a URL by its path inside the version. It is served only if it is in the
version's record (the list of files that sync checked and published), after
:func:`dagfetch.paths.safe_relpath`, and only from inside the version's folder: a path with
``..``, an absolute path, or a file that a link would take out of the folder is not found.
"""

from __future__ import annotations

from typing import Any, Literal

from dagfetch.cache.store import VersionEntry
from dagfetch.diffs import ContentSource, VersionDiff, is_binary, resolve_version_id
from dagfetch.errors import CacheError, UnsafePathError, VersionNotFoundError
from dagfetch.graphs import queries
from dagfetch.models import CachedFile
from dagfetch.paths import safe_relpath
from dagfetch.redact import mask, redact_url
from dagfetch.web.context import (
    MAX_SHOWN_FILE,
    NotFound,
    WebContext,
    age_seconds,
    page_bounds,
    parse_time,
)
from dagfetch.web.schemas import (
    CodeDiff,
    Extraction,
    FileContent,
    FileEntry,
    ImportErrorInfo,
    Page,
    Repository,
    SyncError,
    VersionDetail,
    VersionSummary,
)
from dagfetch.web.settings import repository_web_settings


def repositories(ctx: WebContext) -> list[Repository]:
    with ctx.reading() as conn:
        published = {spec.id: queries.publication(conn, ctx.tables, spec.id)
                     for spec in ctx.workspace.manifest.repositories}
    return [_repository(ctx, spec.id, published[spec.id])
            for spec in ctx.workspace.manifest.repositories]


def repository(ctx: WebContext, repo_id: str) -> Repository:
    ctx.spec(repo_id)
    with ctx.reading() as conn:
        return _repository(ctx, repo_id, queries.publication(conn, ctx.tables, repo_id))


def _repository(ctx: WebContext, repo_id: str, published: Any) -> Repository:
    spec = ctx.spec(repo_id)
    cache = ctx.workspace.cache
    state = cache.state(repo_id) if cache.layout.meta(repo_id).exists() else {}
    current_id = cache.current_id(repo_id)
    current = cache.record(repo_id, current_id) if current_id else None
    error = state.get("last_error")
    last_success = parse_time(state.get("last_success_at"))
    published_version, published_at = published if published else (None, None)
    return Repository(
        repo_id=repo_id,
        url=redact_url(spec.url),
        current_version=current_id,
        current_fetched_at=current.version.fetched_at if current else None,
        versions_kept=len(cache.present_versions(repo_id)),
        last_check_at=parse_time(state.get("last_check_at")),
        last_success_at=last_success,
        last_change_at=parse_time(state.get("last_change_at")),
        seconds_since_last_success=age_seconds(last_success),
        last_error=SyncError(message=mask(str(error.get("message", ""))),
                             at=parse_time(error.get("at")))
        if isinstance(error, dict) else None,
        published_version=published_version,
        published_at=published_at,
        published_age_seconds=age_seconds(published_at),
        hook=repository_web_settings(spec, ctx.workspace.manifest).hook_conn_id is not None,
    )


def versions(ctx: WebContext, repo_id: str, limit: int, offset: int) -> Page[VersionSummary]:
    """A repository's versions, newest first (evicted ones included: their records stay)."""
    limit, offset = page_bounds(limit, offset)
    ctx.spec(repo_id)
    entries = ctx.workspace.cache.versions(repo_id)
    with ctx.reading() as conn:
        extractions = queries.extraction_records(conn, ctx.tables, repo_id)
        published = queries.publication(conn, ctx.tables, repo_id)
    published_id = published[0] if published else None
    items = [_summary(entry, extractions, published_id)
             for entry in entries[offset:offset + limit]]
    return Page[VersionSummary](items=items, total=len(entries), limit=limit, offset=offset)


def _summary(entry: VersionEntry, extractions: dict[str, queries.ExtractionRecord],
             published_id: str | None) -> VersionSummary:
    version = entry.version
    record = extractions.get(version.version_id)
    state: Literal["materialized", "stored", "evicted"] = "evicted" if not entry.present else (
        "materialized" if entry.materialized else "stored")
    return VersionSummary(
        version_id=version.version_id,
        fetched_at=version.fetched_at,
        files=len(version.files),
        bytes=version.total_size,
        current=entry.current,
        published=version.version_id == published_id,
        state=state,
        refetchable=entry.refetchable,
        pinned_by=list(entry.pinned_by),
        extraction=Extraction(extracted_at=record.extracted_at, file_count=record.file_count,
                              dag_count=record.dag_count, error_count=record.error_count)
        if record is not None else None,
    )


def _entry(ctx: WebContext, repo_id: str, ref: str) -> VersionEntry:
    ctx.spec(repo_id)
    try:
        version_id = resolve_version_id(ctx.workspace.cache, repo_id, ref)
    except (VersionNotFoundError, CacheError) as exc:
        raise NotFound(mask(str(exc))) from None
    for entry in ctx.workspace.cache.versions(repo_id):
        if entry.version.version_id == version_id:
            return entry
    raise NotFound(f"{repo_id}: no version {ref!r}")


def version(ctx: WebContext, repo_id: str, ref: str, limit: int, offset: int) -> VersionDetail:
    """One version: its summary, one page of its files (by path) and its import errors."""
    limit, offset = page_bounds(limit, offset)
    entry = _entry(ctx, repo_id, ref)
    version_id = entry.version.version_id
    with ctx.reading() as conn:
        extractions = queries.extraction_records(conn, ctx.tables, repo_id)
        published = queries.publication(conn, ctx.tables, repo_id)
    errors = ctx.store.import_errors(repo_id, version_id)
    files = entry.version.files
    return VersionDetail(
        repo_id=repo_id,
        version=_summary(entry, extractions, published[0] if published else None),
        files=Page[FileEntry](items=[_file_entry(f) for f in files[offset:offset + limit]],
                              total=len(files), limit=limit, offset=offset),
        import_errors=[ImportErrorInfo(repo_id=e.repo_id, version_id=e.version_id, path=e.path,
                                       message=mask(e.message)) for e in errors],
    )


def all_files(ctx: WebContext, repo_id: str, ref: str) -> list[FileEntry]:
    """Every file of a version, by path (what its page draws as a tree)."""
    return [_file_entry(f) for f in _entry(ctx, repo_id, ref).version.files]


def _file_entry(f: CachedFile) -> FileEntry:
    return FileEntry(path=f.path, size=f.size, sha256=f.sha256, kind=f.kind, target=f.target)


def find_file(ctx: WebContext, repo_id: str, ref: str, path: str) -> tuple[VersionEntry,
                                                                           CachedFile]:
    """The version and the recorded file a URL names; NotFound for anything else."""
    entry = _entry(ctx, repo_id, ref)
    try:
        clean = safe_relpath(path)
    except UnsafePathError as exc:
        raise NotFound(f"{repo_id}@{entry.version.version_id}: no file {path!r} "
                       f"({exc.problem})") from None
    for f in entry.version.files:
        if f.path == clean:
            return entry, f
    raise NotFound(f"{repo_id}@{entry.version.version_id}: no file {clean!r}")


def file_content(ctx: WebContext, repo_id: str, ref: str, path: str) -> FileContent:
    entry, f = find_file(ctx, repo_id, ref, path)
    record = ctx.workspace.cache.record(repo_id, entry.version.version_id)
    assert record is not None  # the entry came from the records
    text: str | None = None
    binary = too_large = False
    available = True
    if f.kind == "file":
        where = ContentSource(ctx.workspace.cache, record).path_of(f)
        if where is None:
            available = False
        elif f.size > MAX_SHOWN_FILE:
            too_large = True
        else:
            try:
                data = where.read_bytes()
            except OSError:
                available = False
            else:
                binary = is_binary(data)
                text = None if binary else data.decode("utf-8")
    return FileContent(repo_id=repo_id, version_id=entry.version.version_id, path=f.path,
                       size=f.size, sha256=f.sha256, kind=f.kind, target=f.target,
                       binary=binary, text=text, too_large=too_large, available=available)


def code_diff(ctx: WebContext, repo_id: str, old: str, new: str, *,
              patch: bool = True) -> VersionDiff:
    ctx.spec(repo_id)
    try:
        return ctx.workspace.diff(repo_id, old, new, patch=patch, limits=ctx.limits)
    except (VersionNotFoundError, CacheError) as exc:
        raise NotFound(mask(str(exc))) from None


def code_diff_document(diff: VersionDiff) -> CodeDiff:
    return CodeDiff.model_validate(diff.to_json())
