"""The pages: server-rendered HTML over the same documents as the JSON API. Every page works
without JavaScript (forms are plain GET forms; folders are ``<details>``); only the DAG
picture is drawn by a script, beside a table of the same tasks.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from dagfetch.web import code, dags
from dagfetch.web.context import MAX_PAGE, BadRequest, WebContext
from dagfetch.web.rendering import (
    file_tree,
    highlighted,
    marks_by_task,
    page_links,
    picture_data,
    side_by_side,
    url,
)
from dagfetch.web.security import TOKEN_COOKIE, MaskedHTMLResponse, TokenCheck, safe_next

router = APIRouter(include_in_schema=False)

VERSIONS_PER_PAGE = 50
RUNS_PER_PAGE = 50


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.dagfetch
    return ctx


def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    env = request.app.state.templates
    html = env.get_template(template).render(
        request=request, url=lambda path: url(request, path), page_links=page_links,
        auth=request.app.state.token_check.enabled, **values)
    return MaskedHTMLResponse(html, status_code=status)


@router.get("/")
def repositories_page(request: Request) -> Response:
    return render(request, "repos.html", repositories=code.repositories(context(request)))


@router.get("/repos/{repo_id}")
def repository_page(request: Request, repo_id: str,
                    offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    ctx = context(request)
    return render(request, "repo.html", repo=code.repository(ctx, repo_id),
                  versions=code.versions(ctx, repo_id, VERSIONS_PER_PAGE, offset))


@router.get("/repos/{repo_id}/versions/{version_id}")
def version_page(request: Request, repo_id: str, version_id: str) -> Response:
    ctx = context(request)
    detail = code.version(ctx, repo_id, version_id, 1, 0)
    files = code.all_files(ctx, repo_id, detail.version.version_id)
    others = code.versions(ctx, repo_id, MAX_PAGE, 0).items
    return render(request, "version.html", detail=detail, tree=file_tree(files),
                  file_count=len(files), others=others)


@router.get("/repos/{repo_id}/versions/{version_id}/files/{path:path}")
def file_page(request: Request, repo_id: str, version_id: str, path: str) -> Response:
    content = code.file_content(context(request), repo_id, version_id, path)
    html = highlighted(content.path, content.text) if content.text is not None else None
    return render(request, "file.html", content=content, highlighted=html)


@router.get("/repos/{repo_id}/diff")
def code_diff_page(request: Request, repo_id: str, old: str | None = None,
                   new: str = "current", view: str = "unified") -> Response:
    ctx = context(request)
    if view not in ("unified", "split"):
        raise BadRequest("view is 'unified' or 'split'")
    repo = code.repository(ctx, repo_id)
    others = code.versions(ctx, repo_id, MAX_PAGE, 0).items
    diff = code.code_diff_document(code.code_diff(ctx, repo_id, old, new)) if old else None
    return render(request, "diff.html", repo=repo, others=others, diff=diff, view=view,
                  old=old, new=new, side_by_side=side_by_side)


@router.get("/dags")
def dags_page(request: Request, offset: Annotated[int, Query(ge=0)] = 0) -> Response:
    ctx = context(request)
    return render(request, "dags.html", dags=dags.dags(ctx, MAX_PAGE, offset),
                  errors=dags.import_errors(ctx, None, None, MAX_PAGE, 0),
                  inactive=dags.inactive_dags(ctx))


@router.get("/dags/{dag_id:path}")  # a DAG id may hold "/"
def dag_page(
    request: Request, dag_id: str,
    version: Annotated[int | None, Query(ge=1)] = None,
    compare: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    runs_offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    ctx = context(request)
    detail = dags.dag(ctx, dag_id, VERSIONS_PER_PAGE, offset)
    every = dags.dag(ctx, dag_id, MAX_PAGE, 0).history.items  # for the version menus
    shown = dags.graph(ctx, dag_id, version)
    other = change = None
    if compare is not None and compare != shown.version.number:
        other = dags.graph(ctx, dag_id, compare)
        change = dags.graph_diff(ctx, dag_id, compare, shown.version.number)
    runs = dags.runs(ctx, dag_id, shown.version.number, RUNS_PER_PAGE, runs_offset)
    return render(request, "dag.html", detail=detail, every=every, shown=shown, other=other,
                  change=change, marks=marks_by_task(change), runs=runs,
                  picture=picture_data(shown, other, change))


@router.get("/assets/code.css")
def code_stylesheet(request: Request) -> Response:
    css: str = request.app.state.code_css
    return Response(css, media_type="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/favicon.ico")
def favicon(request: Request) -> Response:
    # browsers ask for it by this name where no page names the icon (a JSON answer)
    return RedirectResponse(url(request, "/static/favicon.svg"), status_code=301)


@router.get("/healthz")
def health() -> Response:
    return Response("ok\n", media_type="text/plain")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    from dagfetch.web.metrics import CONTENT_TYPE, Metrics

    found: Metrics = request.app.state.metrics
    return Response(found.render(), media_type=CONTENT_TYPE)


# -- signing in, when the server wants a token -------------------------------------------------

@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=next, refused=False)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body())[:8192].decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0]
    root = str(request.scope.get("root_path", ""))
    target = safe_next((form.get("next") or [root + "/"])[0], root)
    check: TokenCheck = request.app.state.token_check
    if not check.valid(token):
        return render(request, "login.html", status=401, next=target, refused=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path=root + "/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    root = str(request.scope.get("root_path", ""))
    response = RedirectResponse(root + "/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path=root + "/")
    return response

