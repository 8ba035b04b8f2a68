"""The ASGI application: :func:`create_app` for a scheduler that mounts it in its own server,
and :func:`app_from_environment` for ``dagfetch serve`` (and ``uvicorn --factory``).

    from dagfetch.graphs import GraphStore
    from dagfetch.web import create_app

    app = create_app(workspace, GraphStore.for_cache(workspace.cache.root))
    # Starlette / FastAPI:  parent.mount("/dagfetch", app)

The app only reads the cache and the graph store; the one thing it does is the sync a hook
asks for (``POST /api/hooks/{repo_id}``). Its settings are the manifest's ``[web]`` tables
(:mod:`dagfetch.web.settings`); bad settings, or a connection they name that cannot be
resolved, fail here, naming the field, before anything is served.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response

from dagfetch import __version__
from dagfetch.diffs import DiffLimits
from dagfetch.errors import ConfigError, DagfetchError
from dagfetch.graphs.errors import SchemaNotReadyError
from dagfetch.graphs.pipeline import GraphPipeline
from dagfetch.graphs.store import GraphStore
from dagfetch.redact import get_logger, mask
from dagfetch.web import api, pages
from dagfetch.web.context import WEB_DIFF_LIMITS, BadRequest, NotFound, WebContext
from dagfetch.web.hooks import HookService
from dagfetch.web.metrics import Metrics
from dagfetch.web.rendering import code_css, environment
from dagfetch.web.security import (
    MaskedJSONResponse,
    RequireToken,
    SecurityHeaders,
    TokenCheck,
    route_path,
)
from dagfetch.web.settings import WebSettings, resolve_secrets, web_settings
from dagfetch.web.syncing import SyncRunner
from dagfetch.workspace import Workspace

log = get_logger(__name__)


def create_app(
    workspace: Workspace,
    store: GraphStore,
    *,
    runner: SyncRunner | None = None,
    settings: WebSettings | None = None,
    limits: DiffLimits | None = None,
) -> FastAPI:
    """The web server over ``workspace``'s cache and ``store``. ``runner`` runs the syncs
    hooks ask for (default: sync, then extract into ``store``)."""
    settings = settings if settings is not None else web_settings(workspace.manifest)
    learn_secrets(workspace)
    tokens = resolve_secrets(workspace.connections, settings.auth_conn_id, "web.auth_conn_id",
                             workspace.manifest.source) if settings.auth_conn_id else []
    runner = runner if runner is not None else SyncRunner(GraphPipeline(workspace, store))
    ctx = WebContext(workspace, store, settings, limits or WEB_DIFF_LIMITS)
    metrics = Metrics(ctx)
    runner.listeners.append(metrics.observe)
    hooks = HookService(workspace.manifest, workspace.connections,
                        lambda repo_id: runner.run([repo_id]), settings.hook_delay)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        hooks.close()

    app = FastAPI(
        title="dagfetch", version=__version__, lifespan=lifespan,
        description="The code and DAG graphs dagfetch keeps: repositories, versions, files, "
        "diffs, DAGs, runs and import errors, read from the cache and the graph store.",
        openapi_url="/openapi.json", docs_url=None, redoc_url=None,  # no CDN: offline too
        default_response_class=MaskedJSONResponse,
    )
    app.state.dagfetch = ctx
    app.state.runner = runner
    app.state.hooks = hooks
    app.state.metrics = metrics
    app.state.templates = environment()
    app.state.code_css = code_css()
    app.state.token_check = TokenCheck(tokens)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(files("dagfetch.web") / "static")),
              name="static")
    app.add_middleware(RequireToken, check=app.state.token_check)
    app.add_middleware(SecurityHeaders)
    _errors(app)
    return app


def learn_secrets(workspace: Workspace) -> None:
    """Resolve every connection the manifest names, so that :func:`dagfetch.redact.mask`
    knows their secrets and no page or answer can show one (a sync error, a traceback)."""
    conn_ids = {spec.conn_id for spec in workspace.manifest.repositories if spec.conn_id}
    for conn_id in sorted(conn_ids):
        try:
            workspace.connections.resolve(conn_id)  # a Secret registers itself with the masker
        except ConfigError:
            log.debug("connection %r cannot be resolved here; its secrets stay unknown",
                      conn_id)


def _errors(app: FastAPI) -> None:
    """Errors as answers: JSON under /api, a page elsewhere; never a traceback."""

    def answer(request: Request, status: int, detail: str) -> Response:
        detail = mask(detail)
        if route_path(request.scope).startswith("/api/"):
            return MaskedJSONResponse({"detail": detail}, status_code=status)
        return pages.render(request, "error.html", status=status, status_code=status,
                            detail=detail)

    async def not_found(request: Request, exc: Exception) -> Response:
        return answer(request, 404, str(exc))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return answer(request, 400, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "not found"
        if exc.status_code == 404:
            detail = "no such page"
        return answer(request, exc.status_code, detail)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        if route_path(request.scope).startswith("/api/"):
            detail: Any = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"),
                            "type": e.get("type")} for e in exc.errors()]
            return MaskedJSONResponse({"detail": detail}, status_code=422)
        return answer(request, 400, problems)

    async def store_error(request: Request, exc: Exception) -> Response:
        hint = " (run `dagfetch db upgrade`)" if isinstance(exc, SchemaNotReadyError) else ""
        log.warning("answering 503: %s", exc)
        return answer(request, 503, f"the graph store cannot be read: {exc}{hint}")

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(BadRequest, bad_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(DagfetchError, store_error)


def app_from_environment() -> FastAPI:
    """The app ``dagfetch serve`` runs in each worker process: the manifest, cache root and
    database from the environment (``DAGFETCH_MANIFEST``, ``DAGFETCH_HOME``,
    ``DAGFETCH_DATABASE``, ``DAGFETCH_TABLE_PREFIX``), as the command line resolves them."""
    from dagfetch.graphs.database import default_url
    from dagfetch.graphs.schema import DEFAULT_PREFIX

    workspace = Workspace.from_manifest(os.environ.get("DAGFETCH_MANIFEST") or None,
                                        cache_root=os.environ.get("DAGFETCH_HOME") or None)
    url = os.environ.get("DAGFETCH_DATABASE") or workspace.manifest.database
    store = GraphStore(url or default_url(workspace.cache.root),
                       prefix=os.environ.get("DAGFETCH_TABLE_PREFIX", DEFAULT_PREFIX),
                       upgrade=url is None)
    return create_app(workspace, store)
