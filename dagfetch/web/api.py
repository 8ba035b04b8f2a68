"""The JSON API under ``/api``: everything the pages show, described by ``/openapi.json``.

Each route is a thin call into :mod:`dagfetch.web.code` or :mod:`dagfetch.web.dags`, which
the pages call too. Lists are paged with ``limit`` (1-500, default 100) and ``offset``.
Errors are ``{"detail": "..."}`` with 400, 401, 404 or 413; ``POST /api/hooks/{repo_id}``
is the only route that acts (it starts a sync).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from dagfetch.web import code, dags
from dagfetch.web.context import DEFAULT_PAGE, MAX_PAGE, WebContext
from dagfetch.web.hooks import MAX_BODY, HookService
from dagfetch.web.metrics import Metrics
from dagfetch.web.schemas import (
    CodeDiff,
    DagDetail,
    DagSummary,
    FileContent,
    GraphDiffInfo,
    GraphInfo,
    HookAccepted,
    ImportErrorInfo,
    InactiveDag,
    Page,
    Problem,
    Repository,
    RunInfo,
    VersionDetail,
    VersionSummary,
)
from dagfetch.web.security import MaskedJSONResponse

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "The request is wrong"},
    401: {"model": Problem, "description": "A bearer token is wanted"},
    404: {"model": Problem, "description": "No such repository, version, file or DAG"},
}

router = APIRouter(prefix="/api", responses=ERRORS)

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")]
Offset = Annotated[int, Query(ge=0, description="Items to skip")]
RepoId = Annotated[str, Path(description="A repository id of the manifest")]
VersionRef = Annotated[str, Path(description="A version id, a unique prefix of one (4 "
                                             "characters or more), or `current`")]
DagId = Annotated[str, Path(description="A DAG id")]


def answer(document: BaseModel) -> Response:
    """``document`` as the JSON answer. The route's ``response_model`` documents it; giving
    FastAPI a response instead of a model spares it validating and encoding the document
    again (half the time of a 2,000-task graph)."""
    return MaskedJSONResponse(document.model_dump(mode="json"))


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.dagfetch
    return ctx


@router.get("/repos", tags=["code"], response_model=Page[Repository])
def list_repositories(request: Request, limit: Limit = DEFAULT_PAGE,
                      offset: Offset = 0) -> Response:
    """Every repository of the manifest with its sync state and publication."""
    found = code.repositories(context(request))
    return answer(Page[Repository](items=found[offset:offset + limit], total=len(found),
                                   limit=limit, offset=offset))


@router.get("/repos/{repo_id}", tags=["code"], response_model=Repository)
def get_repository(request: Request, repo_id: RepoId) -> Response:
    return answer(code.repository(context(request), repo_id))


@router.get("/repos/{repo_id}/versions", tags=["code"], response_model=Page[VersionSummary])
def list_versions(request: Request, repo_id: RepoId, limit: Limit = DEFAULT_PAGE,
                  offset: Offset = 0) -> Response:
    """A repository's versions, newest first, with pins and whether each is materialized,
    stored or evicted."""
    return answer(code.versions(context(request), repo_id, limit, offset))


@router.get("/repos/{repo_id}/versions/{version_id}", tags=["code"], response_model=VersionDetail)
def get_version(request: Request, repo_id: RepoId, version_id: VersionRef,
                limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> Response:
    """A version, one page of its files (by path) and its import errors."""
    return answer(code.version(context(request), repo_id, version_id, limit, offset))


@router.get("/repos/{repo_id}/versions/{version_id}/files/{path:path}", tags=["code"],
            response_model=FileContent)
def get_file(request: Request, repo_id: RepoId, version_id: VersionRef,
             path: Annotated[str, Path(description="The file's path in the version")],
             ) -> Response:
    """A file of a version: its content when it is UTF-8 text within the size limit."""
    return answer(code.file_content(context(request), repo_id, version_id, path))


@router.get("/repos/{repo_id}/diff", tags=["code"], response_model=CodeDiff)
def get_code_diff(
    request: Request, repo_id: RepoId,
    old: Annotated[str, Query(description="The version to compare from")],
    new: Annotated[str, Query(description="The version to compare to")] = "current",
    patch: Annotated[bool, Query(description="Include the line hunks of text files")] = True,
) -> Response:
    """Files added, deleted, modified and renamed from version `old` to version `new`."""
    diff = code.code_diff(context(request), repo_id, old, new, patch=patch)
    document = diff.to_json()
    CodeDiff.model_validate(document)  # the contract holds; the dict is the answer as it is
    return MaskedJSONResponse(document)


@router.get("/dags", tags=["dags"], response_model=Page[DagSummary])
def list_dags(request: Request, limit: Limit = DEFAULT_PAGE,
              offset: Offset = 0) -> Response:
    """Every DAG's latest graph version and the newest code that gave it."""
    return answer(dags.dags(context(request), limit, offset))


@router.get("/inactive-dags", tags=["dags"], response_model=list[InactiveDag])
def list_inactive_dags(request: Request) -> Response:
    """DAGs the repository that defined them last no longer defines: where they were last
    seen, and the version they vanished in."""
    return MaskedJSONResponse([item.model_dump(mode="json")
                               for item in dags.inactive_dags(context(request))])


@router.get("/dags/{dag_id:path}/graph", tags=["dags"], response_model=GraphInfo)
def get_graph(request: Request, dag_id: DagId,
              version: Annotated[int | None, Query(ge=1, description="A graph version "
                                                   "number (default: latest)")] = None,
              ) -> Response:
    """A graph version's tasks and edges."""
    return answer(dags.graph(context(request), dag_id, version))


@router.get("/dags/{dag_id:path}/diff", tags=["dags"], response_model=GraphDiffInfo)
def get_graph_diff(request: Request, dag_id: DagId,
                   old: Annotated[int, Query(ge=1)], new: Annotated[int, Query(ge=1)],
                   ) -> Response:
    """Tasks and edges added, removed and changed from graph version `old` to `new`."""
    return answer(dags.graph_diff(context(request), dag_id, old, new))


@router.get("/dags/{dag_id:path}/runs", tags=["dags"], response_model=Page[RunInfo])
def list_runs(request: Request, dag_id: DagId,
              version: Annotated[int | None, Query(ge=1, description="Only runs of this "
                                                   "graph version")] = None,
              limit: Limit = DEFAULT_PAGE, offset: Offset = 0) -> Response:
    """Runs pinned to the DAG, newest first."""
    return answer(dags.runs(context(request), dag_id, version, limit, offset))


# after the routes below it: a DAG id may hold "/" (its path parameter takes any
# path), so "/dags/x/graph" must reach the graph of DAG "x" first
@router.get("/dags/{dag_id:path}", tags=["dags"], response_model=DagDetail)
def get_dag(request: Request, dag_id: DagId, limit: Limit = DEFAULT_PAGE,
            offset: Offset = 0) -> Response:
    """A DAG's latest version and its history, newest first, with the code version each
    graph version came from and the runs pinned to it."""
    return answer(dags.dag(context(request), dag_id, limit, offset))


@router.get("/import-errors", tags=["dags"], response_model=Page[ImportErrorInfo])
def list_import_errors(
    request: Request,
    repo_id: Annotated[str | None, Query(description="Only this repository")] = None,
    version_id: Annotated[str | None, Query(description="A source version (default: each "
                                            "repository's newest extraction)")] = None,
    limit: Limit = DEFAULT_PAGE, offset: Offset = 0,
) -> Response:
    return answer(dags.import_errors(context(request), repo_id, version_id, limit, offset))


@router.post("/hooks/{repo_id}", tags=["hooks"], status_code=202, response_model=HookAccepted,
             responses={
    413: {"model": Problem, "description": "The body is too large"}})
async def post_hook(request: Request, repo_id: RepoId) -> HookAccepted | JSONResponse:
    """A push to the repository: starts a sync, coalescing bursts. Authenticated by
    GitHub's `X-Hub-Signature-256`, GitLab's `X-Gitlab-Token` or `Authorization: Bearer`,
    against the secret of the repository's `web.hook_conn_id` connection."""
    hooks: HookService = request.app.state.hooks
    metrics: Metrics = request.app.state.metrics
    known = repo_id in context(request).workspace.manifest.ids
    label = repo_id if known else "(unknown)"  # metric labels never come from a URL

    def refused(status: int, detail: str) -> JSONResponse:
        metrics.hook_requests.labels(label, "refused").inc()
        return JSONResponse({"detail": detail}, status_code=status)

    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return refused(413, f"the body is larger than {MAX_BODY} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY:
            return refused(413, f"the body is larger than {MAX_BODY} bytes")
    if not known or not hooks.accepts(repo_id, request.headers, bytes(received)):
        return refused(401, "no valid signature or token for this repository's hook")
    if request.headers.get("x-github-event") == "ping":
        sync = "none"  # GitHub's hello when the hook is created: nothing was pushed
    else:
        sync = hooks.coalescer.request(repo_id)
    metrics.hook_requests.labels(label, "accepted").inc()
    return HookAccepted(repo_id=repo_id, sync=sync)  # type: ignore[arg-type]
