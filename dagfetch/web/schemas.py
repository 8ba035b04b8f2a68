"""The JSON API's documents: what every page shows, with stable field names.

These models are the API's contract (``/openapi.json`` is generated from them) and the pages'
data too: a page renders the same document its API route returns, so the two never disagree.
Field names follow the rest of dagfetch (``repo_id``, ``version_id``, ``dag_id``, ``number``);
times are ISO 8601 in UTC; ages are seconds. Long lists are pages (:class:`Page`):
``items``, ``total``, ``limit``, ``offset``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Item = TypeVar("Item")

AttributeValue = str | int | float | bool | None


class Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(Document, Generic[Item]):
    """One page of a long list: ``items`` from ``offset``, ``total`` in all."""

    items: list[Item]
    total: int
    limit: int
    offset: int


class Problem(Document):
    """What an error answer carries: what was wrong, in words."""

    detail: str


# -- repositories and versions ---------------------------------------------------------------

class SyncError(Document):
    message: str
    at: datetime | None = None


class Repository(Document):
    repo_id: str
    url: str = Field(description="the manifest's URL with credentials hidden")
    current_version: str | None
    current_fetched_at: datetime | None
    versions_kept: int
    last_check_at: datetime | None
    last_success_at: datetime | None
    last_change_at: datetime | None
    seconds_since_last_success: float | None
    last_error: SyncError | None
    published_version: str | None = Field(
        description="the version the leading node published for followers (sync --publish)")
    published_at: datetime | None
    published_age_seconds: float | None
    hook: bool = Field(description="whether POST /api/hooks/<repo_id> is configured")


class Extraction(Document):
    """What the graph store recorded of a version's extraction."""

    extracted_at: datetime | None
    file_count: int
    dag_count: int
    error_count: int


class VersionSummary(Document):
    version_id: str
    fetched_at: datetime
    files: int
    bytes: int
    current: bool
    published: bool
    state: Literal["materialized", "stored", "evicted"] = Field(
        description="materialized: its tree is on disk; stored: its contents are kept and "
        "its tree is rebuilt on use; evicted: only its record is kept")
    refetchable: bool
    pinned_by: list[str]
    extraction: Extraction | None


class FileEntry(Document):
    path: str
    size: int
    sha256: str
    kind: Literal["file", "symlink"]
    target: str | None


class ImportErrorInfo(Document):
    repo_id: str
    version_id: str
    path: str
    message: str


class VersionDetail(Document):
    repo_id: str
    version: VersionSummary
    files: Page[FileEntry]
    import_errors: list[ImportErrorInfo]


class FileContent(Document):
    repo_id: str
    version_id: str
    path: str
    size: int
    sha256: str
    kind: Literal["file", "symlink"]
    target: str | None
    binary: bool
    text: str | None = Field(description="the content, when it is UTF-8 text within the "
                             "size limit")
    too_large: bool
    available: bool = Field(description="false when the cache no longer has the content")


# -- code diffs --------------------------------------------------------------------------------

class DiffLine(Document):
    kind: Literal["context", "added", "deleted"]
    old_number: int | None
    new_number: int | None
    text: str
    eol: bool


class DiffHunk(Document):
    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: list[DiffLine]


class DiffFile(Document):
    status: Literal["added", "deleted", "modified", "renamed"]
    path: str
    old_path: str | None
    old_sha256: str | None
    new_sha256: str | None
    old_size: int | None
    new_size: int | None
    binary: bool
    skipped: str | None
    insertions: int | None
    deletions: int | None
    hunks: list[DiffHunk]


class PathRef(Document):
    path: str


class RenameRef(Document):
    old: str
    new: str


class Renamed(Document):
    path: RenameRef


class CodeDiff(Document):
    """``dvc diff --json``'s lists, and per file what dagfetch knows besides."""

    repo_id: str
    old_version: str
    new_version: str
    added: list[PathRef]
    deleted: list[PathRef]
    modified: list[PathRef]
    renamed: list[Renamed]
    files: list[DiffFile]


# -- DAGs and graphs ---------------------------------------------------------------------------

class SourceInfo(Document):
    """Cached code: a repository's version, and the file in it."""

    repo_id: str
    version_id: str
    path: str


class GraphVersionInfo(Document):
    dag_id: str
    number: int
    graph_hash: str
    task_count: int
    edge_count: int
    created_at: datetime
    latest: bool


class DagSummary(Document):
    dag_id: str
    version: GraphVersionInfo
    source: SourceInfo | None = Field(description="the newest code that gave this graph")


class InactiveDag(Document):
    """A DAG the repository that defined it last no longer defines."""

    dag_id: str
    version: GraphVersionInfo = Field(description="the graph it had when last seen")
    last_seen: SourceInfo | None = Field(description="the newest code that gave that graph")
    gone_in: SourceInfo = Field(description="the version it vanished in, and the file that "
                                "used to define it")
    gone_at: datetime | None


class DagHistoryEntry(Document):
    version: GraphVersionInfo
    sources: list[SourceInfo] = Field(description="the code versions that gave it, oldest "
                                      "first")
    runs: int = Field(description="runs pinned to this graph version")


class DagDetail(Document):
    dag_id: str
    latest: GraphVersionInfo
    history: Page[DagHistoryEntry] = Field(description="graph versions, newest first")


class TaskInfo(Document):
    task_id: str
    kind: str | None
    attributes: dict[str, AttributeValue]
    upstream: list[str]
    downstream: list[str]


class EdgeInfo(Document):
    upstream: str
    downstream: str


class GraphInfo(Document):
    dag_id: str
    version: GraphVersionInfo
    sources: list[SourceInfo]
    tasks: list[TaskInfo]
    edges: list[EdgeInfo]


class GraphDiffInfo(Document):
    dag_id: str
    old: int
    new: int
    tasks_added: list[str]
    tasks_removed: list[str]
    tasks_changed: list[str]
    edges_added: list[EdgeInfo]
    edges_removed: list[EdgeInfo]


class RunInfo(Document):
    run_id: str
    dag_id: str
    number: int = Field(description="the graph version the run is pinned to")
    source: SourceInfo | None
    pinned_at: datetime


# -- hooks -------------------------------------------------------------------------------------

class HookAccepted(Document):
    repo_id: str
    sync: Literal["scheduled", "joined", "queued", "none"] = Field(
        description="scheduled: a sync starts shortly; joined: one was about to start; "
        "queued: one is running, another follows it; none: the event needs no sync (a ping)")
