"""Garbage collection of the graph store, so that it stays as large as what it keeps.

What goes, in the store's one transaction:

- **Superseded graph versions**: not their DAG's latest, not among its newest ``keep``
  numbers, not pinned by any run.
- **Old source versions**: beyond the *keep window* (each repository's newest
  ``keep_sources`` extractions), not pinned by a run, not the published version, and no
  longer kept by the cache when the caller says what it keeps (``kept_sources``). Their
  import errors go, and their source links, except the newest link of each graph version
  that stays (so ``graph history`` still says which code produced it); the source version's
  row goes when nothing points at it any more, and otherwise no longer counts as extracted
  (should the repository go back to it, it is extracted again). Source rows no extraction
  made (a run's, a graph recorded by hand) go the same way once nothing points at them.
- **Inactive DAGs beyond the window**: a DAG that vanished in a source version outside its
  repository's window loses every graph version no run is pinned to; a DAG left with no
  version at all is forgotten (its row goes: should it come back, it starts again at 1).

Rows are deleted children first (links, tasks, edges and import errors before the graph and
source versions they point at; DAG rows last), in chunks of ids, so no statement breaks a
foreign key or a backend's limit on parameters, whatever the database. Version numbers of
removed versions are never reused while the DAG's row exists, so "version 2" means one graph.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, NamedTuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dagfetch.graphs.database import chunks
from dagfetch.graphs.model import GcResult
from dagfetch.graphs.schema import GraphTables

#: What the cache still keeps, per repository: version ids (see GraphPipeline.gc).
KeptSources = Mapping[str, Collection[str]]


class LinkKey(NamedTuple):
    """A ``dag_source`` row's primary key."""

    source_pk: int
    dag_pk: int


@attrs.frozen
class Plan:
    """Everything one gc removes, found before anything is deleted (dry runs stop here)."""

    versions: list[tuple[int, str, int]]  # (row id, dag_id, number)
    sources: list[tuple[int, str, str]]  # (row id, repo_id, version_id): rows that go
    stripped: list[int]  # source row ids whose import errors go (the rows above included)
    links: set[LinkKey]
    import_errors: int
    forgotten: list[tuple[int, str]]  # (dag row id, dag_id)
    new_latest: dict[int, int]  # dag row id -> its highest remaining number, for DAGs whose
    # latest version goes (an inactive DAG beyond the window keeping only pinned versions)


def collect(
    conn: Connection, tables: GraphTables, *, keep: int, keep_sources: int,
    kept_sources: KeptSources | None = None, dry_run: bool = False,
) -> GcResult:
    """Remove (or, with ``dry_run``, only name) what gc may remove; see the module's rules."""
    plan = make_plan(conn, tables, keep=keep, keep_sources=keep_sources,
                     kept_sources=kept_sources)
    if not dry_run:
        execute(conn, tables, plan)
    return GcResult(
        removed=tuple((dag_id, number) for _, dag_id, number in plan.versions),
        dry_run=dry_run,
        source_versions=tuple((repo_id, version_id) for _, repo_id, version_id in plan.sources),
        import_errors=plan.import_errors,
        links=len(plan.links),
        forgotten=tuple(dag_id for _, dag_id in plan.forgotten),
    )


def make_plan(
    conn: Connection, tables: GraphTables, *, keep: int, keep_sources: int,
    kept_sources: KeptSources | None,
) -> Plan:
    window, collectable = _sources(conn, tables, keep_sources, kept_sources or {})
    beyond = _inactive_beyond(conn, tables, window)
    versions, survivors, latest_doomed = _versions(conn, tables, keep, beyond)
    doomed_ids = [row_id for row_id, _, _ in versions]
    links = set(_links_of_versions(conn, tables, doomed_ids))
    newest_kept = _newest_links(conn, tables, survivors)
    remaining: dict[int, int] = {source_pk: 0 for source_pk in collectable}
    for source_pk, dag_pk, version_id in _links_of_sources(conn, tables, list(collectable)):
        key = LinkKey(source_pk, dag_pk)
        if key in links:
            continue
        if newest_kept.get(version_id) == source_pk:
            remaining[source_pk] += 1
        else:
            links.add(key)
    stripped = sorted(collectable)
    sources = [(source_pk, *collectable[source_pk]) for source_pk in stripped
               if remaining[source_pk] == 0]
    forgotten = [(dag_pk, dag_id) for dag_pk, dag_id in beyond.items()
                 if not survivors.get(dag_pk)]
    new_latest = {dag_pk: max(survivors[dag_pk].values()) for dag_pk in latest_doomed
                  if survivors.get(dag_pk)}
    return Plan(versions, sources, stripped, links,
                _count_errors(conn, tables, stripped), forgotten, new_latest)


def _sources(
    conn: Connection, tables: GraphTables, keep_sources: int, kept: KeptSources
) -> tuple[set[tuple[str, str]], dict[int, tuple[str, str]]]:
    """``(window, collectable)``: the ``(repo_id, version_id)`` of each repository's newest
    ``keep_sources`` extractions, and the source rows gc may strip or remove."""
    source_version, run, published = tables.source_version, tables.run, tables.published
    pinned = set(conn.execute(
        sa.select(run.c.source_version_pk).where(run.c.source_version_pk.is_not(None))
    ).scalars())
    serving = {(row.repo_id, row.version_id) for row in conn.execute(sa.select(published))}
    rows = conn.execute(
        sa.select(source_version.c.id, source_version.c.repo_id, source_version.c.version_id,
                  source_version.c.extracted_at)
        .order_by(source_version.c.repo_id, source_version.c.extracted_at.desc(),
                  source_version.c.id.desc())
    ).all()
    window: set[tuple[str, str]] = set()
    collectable: dict[int, tuple[str, str]] = {}
    rank: dict[str, int] = {}
    for row in rows:
        key = (row.repo_id, row.version_id)
        if row.extracted_at is not None:  # rows without an extraction are never in a window
            rank[row.repo_id] = rank.get(row.repo_id, 0) + 1
            if rank[row.repo_id] <= keep_sources:
                window.add(key)
                continue
        if (row.id not in pinned and key not in serving
                and row.version_id not in kept.get(row.repo_id, ())):
            collectable[row.id] = key
    return window, collectable


def _inactive_beyond(
    conn: Connection, tables: GraphTables, window: set[tuple[str, str]]
) -> dict[int, str]:
    """Inactive DAGs that vanished outside their repository's window: row id -> dag_id."""
    dag = tables.dag
    rows = conn.execute(sa.select(dag.c.id, dag.c.dag_id, dag.c.owner_repo_id,
                                  dag.c.vanished_version_id)
                        .where(dag.c.vanished_version_id.is_not(None))).all()
    return {row.id: row.dag_id for row in rows
            if (row.owner_repo_id, row.vanished_version_id) not in window}


def _versions(
    conn: Connection, tables: GraphTables, keep: int, beyond: Mapping[int, str]
) -> tuple[list[tuple[int, str, int]], dict[int, dict[int, int]], set[int]]:
    """``(doomed, survivors, latest_doomed)``: the graph versions that go as (row id, dag_id,
    number), per DAG row the versions that stay (row id -> number), and the DAG rows whose
    latest version goes."""
    dag, graph_version, run = tables.dag, tables.graph_version, tables.run
    pinned = sa.exists().where(run.c.graph_version_id == graph_version.c.id)
    rows = conn.execute(
        sa.select(graph_version.c.id, graph_version.c.number, graph_version.c.dag_pk,
                  dag.c.dag_id, dag.c.latest_number, pinned.label("pinned"))
        .join(dag, dag.c.id == graph_version.c.dag_pk)
        .order_by(dag.c.dag_id, graph_version.c.number.desc())
    ).all()
    doomed: list[tuple[int, str, int]] = []
    survivors: dict[int, dict[int, int]] = {dag_pk: {} for dag_pk in beyond}
    latest_doomed: set[int] = set()
    rank: dict[int, int] = {}  # per DAG: 1 for its newest version, 2 for the next...
    for row in rows:
        rank[row.dag_pk] = rank.get(row.dag_pk, 0) + 1
        superseded = rank[row.dag_pk] > keep and row.number != row.latest_number
        if not row.pinned and (superseded or row.dag_pk in beyond):
            doomed.append((row.id, row.dag_id, row.number))
            if row.number == row.latest_number:
                latest_doomed.add(row.dag_pk)
        else:
            survivors.setdefault(row.dag_pk, {})[row.id] = row.number
    return doomed, survivors, latest_doomed


def _links_of_versions(
    conn: Connection, tables: GraphTables, version_ids: list[int]
) -> Iterable[LinkKey]:
    dag_source = tables.dag_source
    for chunk in chunks(version_ids):
        for row in conn.execute(sa.select(dag_source.c.source_version_pk, dag_source.c.dag_pk)
                                .where(dag_source.c.graph_version_id.in_(chunk))):
            yield LinkKey(row.source_version_pk, row.dag_pk)


def _links_of_sources(
    conn: Connection, tables: GraphTables, source_pks: list[int]
) -> Iterable[tuple[int, int, int]]:
    dag_source = tables.dag_source
    for chunk in chunks(sorted(source_pks)):
        for row in conn.execute(sa.select(dag_source.c.source_version_pk, dag_source.c.dag_pk,
                                          dag_source.c.graph_version_id)
                                .where(dag_source.c.source_version_pk.in_(chunk))):
            yield row.source_version_pk, row.dag_pk, row.graph_version_id


def _newest_links(
    conn: Connection, tables: GraphTables, survivors: Mapping[int, Mapping[int, int]]
) -> dict[int, int]:
    """Per graph version that stays: the source row of its newest link."""
    dag_source = tables.dag_source
    staying = {version_id for versions in survivors.values() for version_id in versions}
    newest: dict[int, int] = {}
    for row in conn.execute(
        sa.select(dag_source.c.graph_version_id,
                  sa.func.max(dag_source.c.source_version_pk).label("newest"))
        .group_by(dag_source.c.graph_version_id)
    ):
        if row.graph_version_id in staying:
            newest[row.graph_version_id] = row.newest
    return newest


def _count_errors(conn: Connection, tables: GraphTables, source_pks: list[int]) -> int:
    import_error = tables.import_error
    total = 0
    for chunk in chunks(source_pks):
        total += int(conn.execute(sa.select(sa.func.count()).select_from(import_error)
                                  .where(import_error.c.source_version_pk.in_(chunk)))
                     .scalar_one())
    return total


def execute(conn: Connection, tables: GraphTables, plan: Plan) -> None:
    """Delete what ``plan`` names, children before parents."""
    dag, dag_source, graph_version = tables.dag, tables.dag_source, tables.graph_version
    by_key = dag_source.delete().where(dag_source.c.source_version_pk == sa.bindparam("s"),
                                       dag_source.c.dag_pk == sa.bindparam("d"))
    for link_chunk in chunks(sorted(plan.links)):
        conn.execute(by_key, [{"s": key.source_pk, "d": key.dag_pk} for key in link_chunk])
    version_ids = [row_id for row_id, _, _ in plan.versions]
    for chunk in chunks(version_ids):
        for table in (tables.edge, tables.task):
            conn.execute(sa.delete(table).where(table.c.graph_version_id.in_(chunk)))
    _delete_in(conn, tables.import_error, tables.import_error.c.source_version_pk,
               plan.stripped)
    _delete_in(conn, graph_version, graph_version.c.id, version_ids)
    if plan.new_latest:
        conn.execute(sa.update(dag).where(dag.c.id == sa.bindparam("dag_row"))
                     .values(latest_number=sa.bindparam("number")),
                     [{"dag_row": dag_pk, "number": number}
                      for dag_pk, number in plan.new_latest.items()])
    _delete_in(conn, dag, dag.c.id, [dag_pk for dag_pk, _ in plan.forgotten])
    removed = [source_pk for source_pk, _, _ in plan.sources]
    _delete_in(conn, tables.source_version, tables.source_version.c.id, removed)
    # a stripped row that stays (it holds a kept graph version's newest link) no longer
    # counts as extracted: were the repository to go back to it, it is extracted again
    source_version = tables.source_version
    for chunk in chunks(sorted(set(plan.stripped) - set(removed))):
        conn.execute(sa.update(source_version).where(source_version.c.id.in_(chunk))
                     .values(extracted_at=None, file_count=0, dag_count=0, error_count=0))


def _delete_in(conn: Connection, table: sa.Table, column: sa.Column[Any],
               ids: list[int]) -> None:
    for chunk in chunks(ids):
        conn.execute(sa.delete(table).where(column.in_(chunk)))
