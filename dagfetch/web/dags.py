"""The graph side of the web server: DAGs, their graph versions and history, the diff between
two graph versions, the runs pinned to them and the import errors of extractions. Every
function returns a document of :mod:`dagfetch.web.schemas`, read from the graph store in a
few queries per answer, never by parsing a DAG file.
"""

from __future__ import annotations

from dagfetch.graphs import queries
from dagfetch.graphs import runs as run_pins
from dagfetch.graphs.errors import GraphNotFoundError
from dagfetch.graphs.model import Graph, GraphVersion, SourceRef, diff
from dagfetch.redact import mask
from dagfetch.web.context import NotFound, WebContext, page_bounds
from dagfetch.web.schemas import (
    DagDetail,
    DagHistoryEntry,
    DagSummary,
    EdgeInfo,
    GraphDiffInfo,
    GraphInfo,
    GraphVersionInfo,
    ImportErrorInfo,
    InactiveDag,
    Page,
    RunInfo,
    SourceInfo,
)


def version_info(version: GraphVersion) -> GraphVersionInfo:
    return GraphVersionInfo(dag_id=version.dag_id, number=version.number,
                            graph_hash=version.graph_hash, task_count=version.task_count,
                            edge_count=version.edge_count, created_at=version.created_at,
                            latest=version.latest)


def source_info(source: SourceRef) -> SourceInfo:
    return SourceInfo(repo_id=source.repo_id, version_id=source.version_id, path=source.path)


def dags(ctx: WebContext, limit: int, offset: int) -> Page[DagSummary]:
    """Every active DAG's latest graph version with the newest code that gave it, by dag_id
    (the inactive ones: :func:`inactive_dags`)."""
    limit, offset = page_bounds(limit, offset)
    with ctx.reading() as conn:
        latest = queries.latest_all(conn, ctx.tables)
        sources = queries.latest_sources(conn, ctx.tables)
    latest.sort(key=lambda version: version.dag_id)
    items = [DagSummary(dag_id=version.dag_id, version=version_info(version),
                        source=source_info(sources[version.dag_id])
                        if version.dag_id in sources else None)
             for version in latest[offset:offset + limit]]
    return Page[DagSummary](items=items, total=len(latest), limit=limit, offset=offset)


def inactive_dags(ctx: WebContext) -> list[InactiveDag]:
    """DAGs that disappeared: the repository that defined them last no longer does (the
    graph store marks them, :mod:`dagfetch.graphs.lifecycle`), with the newest code that
    still gave their graph and the version they vanished in."""
    with ctx.reading() as conn:
        gone = [version for version in queries.latest_all(conn, ctx.tables,
                                                          include_inactive=True)
                if not version.active]
        sources = queries.latest_sources(conn, ctx.tables)
    return [InactiveDag(dag_id=version.dag_id, version=version_info(version),
                        last_seen=source_info(sources[version.dag_id])
                        if version.dag_id in sources else None,
                        gone_in=source_info(version.vanished_in),
                        gone_at=version.vanished_at)
            for version in gone if version.vanished_in is not None]


def dag(ctx: WebContext, dag_id: str, limit: int, offset: int) -> DagDetail:
    """A DAG: its latest version and one page of its history (newest first), each version
    with the code that gave it and how many runs are pinned to it."""
    limit, offset = page_bounds(limit, offset)
    with ctx.reading() as conn:
        try:
            versions = queries.history(conn, ctx.tables, dag_id)
        except GraphNotFoundError as exc:
            raise NotFound(str(exc)) from None
        sources = queries.sources_of_dag(conn, ctx.tables, dag_id)
        runs = queries.run_counts(conn, ctx.tables, dag_id)
    latest = [version for version in versions if version.latest]
    if not latest:
        raise NotFound(f"DAG {dag_id!r} has no graph version")
    newest_first = list(reversed(versions))
    entries = [DagHistoryEntry(version=version_info(version),
                               sources=[source_info(s) for s in sources.get(version.number, [])],
                               runs=runs.get(version.number, 0))
               for version in newest_first[offset:offset + limit]]
    return DagDetail(dag_id=dag_id, latest=version_info(latest[0]),
                     history=Page[DagHistoryEntry](items=entries, total=len(versions),
                                                   limit=limit, offset=offset))


def _graph(ctx: WebContext, dag_id: str, number: int | None) -> tuple[GraphVersion, Graph,
                                                                      list[SourceRef]]:
    with ctx.reading() as conn:
        try:
            stored = queries.find_version(conn, ctx.tables, dag_id, number)
        except GraphNotFoundError as exc:
            raise NotFound(str(exc)) from None
        graph = queries.load_graph(conn, ctx.tables, dag_id, stored.row_id)
        sources = queries.sources(conn, ctx.tables, stored.row_id)
    return stored.version, graph, sources


def graph(ctx: WebContext, dag_id: str, number: int | None = None) -> GraphInfo:
    """A graph version's tasks (with their upstream and downstream tasks) and edges."""
    version, found, sources = _graph(ctx, dag_id, number)
    upstream: dict[str, list[str]] = {task.task_id: [] for task in found.tasks}
    downstream: dict[str, list[str]] = {task.task_id: [] for task in found.tasks}
    for edge in found.edges:
        upstream[edge.downstream].append(edge.upstream)
        downstream[edge.upstream].append(edge.downstream)
    # one validation of the whole document: a model per task costs 10x more on large DAGs
    return GraphInfo.model_validate({
        "dag_id": dag_id, "version": version_info(version),
        "sources": [source_info(s) for s in sources],
        "tasks": [{"task_id": task.task_id, "kind": task.kind,
                   "attributes": dict(task.attributes), "upstream": upstream[task.task_id],
                   "downstream": downstream[task.task_id]} for task in found.tasks],
        "edges": [{"upstream": edge.upstream, "downstream": edge.downstream}
                  for edge in found.edges],
    })


def graph_diff(ctx: WebContext, dag_id: str, old: int, new: int) -> GraphDiffInfo:
    _, old_graph, _ = _graph(ctx, dag_id, old)
    _, new_graph, _ = _graph(ctx, dag_id, new)
    change = diff(old_graph, new_graph)
    return GraphDiffInfo(
        dag_id=dag_id, old=old, new=new, tasks_added=list(change.tasks_added),
        tasks_removed=list(change.tasks_removed), tasks_changed=list(change.tasks_changed),
        edges_added=[EdgeInfo(upstream=e.upstream, downstream=e.downstream)
                     for e in change.edges_added],
        edges_removed=[EdgeInfo(upstream=e.upstream, downstream=e.downstream)
                       for e in change.edges_removed],
    )


def runs(ctx: WebContext, dag_id: str, number: int | None, limit: int,
         offset: int) -> Page[RunInfo]:
    """The runs pinned to a DAG (to one of its graph versions), newest first."""
    limit, offset = page_bounds(limit, offset)
    with ctx.reading() as conn:
        try:
            queries.find_version(conn, ctx.tables, dag_id, number)
        except GraphNotFoundError as exc:
            raise NotFound(str(exc)) from None
        found = run_pins.list_runs(conn, ctx.tables, dag_id, number=number, limit=limit,
                                   offset=offset)
        total = run_pins.count_runs(conn, ctx.tables, dag_id, number=number)
    items = [RunInfo(run_id=run.run_id, dag_id=dag_id, number=run.version.number,
                     source=source_info(run.source) if run.source else None,
                     pinned_at=run.pinned_at) for run in found]
    return Page[RunInfo](items=items, total=total, limit=limit, offset=offset)


def import_errors(ctx: WebContext, repo_id: str | None, version_id: str | None, limit: int,
                  offset: int) -> Page[ImportErrorInfo]:
    """Import errors of one source version, or of each repository's newest extraction."""
    limit, offset = page_bounds(limit, offset)
    if repo_id is not None:
        ctx.spec(repo_id)
    found = ctx.store.import_errors(repo_id, version_id)
    items = [ImportErrorInfo(repo_id=e.repo_id, version_id=e.version_id, path=e.path,
                             message=mask(e.message)) for e in found[offset:offset + limit]]
    return Page[ImportErrorInfo](items=items, total=len(found), limit=limit, offset=offset)
