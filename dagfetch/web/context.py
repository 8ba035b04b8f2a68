"""What every route of the web server reads from: the workspace (manifest and cache), the
graph store and the settings. (The two parts that act, hooks and metrics, live on the app's
state beside it.)

Nothing here keeps state about repositories or DAGs between requests: each answer is read
from the cache and the database when it is asked for, so several server processes over the
same cache and database give the same answers (the second seed's point: no worker keeps its
own idea of the DAGs, so none disagrees or flickers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import attrs
from sqlalchemy.engine import Connection

from dagfetch.diffs import DiffLimits
from dagfetch.graphs import database
from dagfetch.graphs.schema import GraphTables
from dagfetch.graphs.store import GraphStore
from dagfetch.manifest import RepositorySpec
from dagfetch.web.settings import WebSettings
from dagfetch.workspace import Workspace

#: The longest list page an answer gives; ``limit`` above it is refused.
MAX_PAGE = 500
DEFAULT_PAGE = 100
#: Bytes of a file shown (highlighted) on its page; larger files say so instead.
MAX_SHOWN_FILE = 1024 * 1024
#: What one diff page or answer shows: a page of 20,000 table rows is past reading (and
#: takes seconds to render); the files beyond say why they have no lines.
WEB_DIFF_LIMITS = DiffLimits(max_file_bytes=512 * 1024, max_total_bytes=8 * 1024 * 1024,
                             max_lines=10_000)


class NotFound(Exception):
    """The thing a URL names is not there (404); the message says what and where."""


class BadRequest(Exception):
    """The request is wrong (400); the message says what to change."""


@attrs.define
class WebContext:
    workspace: Workspace
    store: GraphStore
    settings: WebSettings
    limits: DiffLimits = WEB_DIFF_LIMITS

    @property
    def tables(self) -> GraphTables:
        return self.store.tables

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection to the graph store, for the queries of one answer."""
        with database.reading(self.store.engine) as conn:
            yield conn

    def spec(self, repo_id: str) -> RepositorySpec:
        for spec in self.workspace.manifest.repositories:
            if spec.id == repo_id:
                return spec
        raise NotFound(f"no repository {repo_id!r} in the manifest")


def now() -> datetime:
    return datetime.now(timezone.utc)


def age_seconds(moment: datetime | None, at: datetime | None = None) -> float | None:
    """Seconds from ``moment`` to ``at`` (default: now), or None without a moment."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, ((at or now()) - moment).total_seconds())


def parse_time(value: object) -> datetime | None:
    """A timestamp as the cache's state file keeps it (ISO text), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise BadRequest("offset must be 0 or more")
    return limit, offset
