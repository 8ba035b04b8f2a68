"""``dagfetch serve``: a small read-only web server over the cache and the graph store.

It shows each repository's versions, their files and what changed between two of them, each
DAG's graph versions drawn as a picture, their history, diffs and pinned runs, import errors,
and it answers the same as JSON (``/openapi.json`` describes it), with Prometheus metrics at
``/metrics`` and a push hook per repository that starts a sync. Needs the ``web`` extra
(``pip install 'dagfetch[web]'``).

    from dagfetch.web import create_app
    app = create_app(workspace, store)        # an ASGI app, to run or to mount

The modules: :mod:`~dagfetch.web.app` (the application), :mod:`~dagfetch.web.api` and
:mod:`~dagfetch.web.pages` (routes), :mod:`~dagfetch.web.code` and :mod:`~dagfetch.web.dags`
(what they read), :mod:`~dagfetch.web.schemas` (the API's documents),
:mod:`~dagfetch.web.rendering` (templates, highlighting, the picture's data),
:mod:`~dagfetch.web.hooks`, :mod:`~dagfetch.web.syncing`, :mod:`~dagfetch.web.metrics`,
:mod:`~dagfetch.web.security` and :mod:`~dagfetch.web.settings`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagfetch.web.app import app_from_environment, create_app

#: The import names the web extra brings, for the check that says what to install.
EXTRA_MODULES = ("fastapi", "starlette", "uvicorn", "jinja2", "pygments", "prometheus_client")


def missing_modules() -> list[str]:
    """The modules of the ``web`` extra that are not installed."""
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def __getattr__(name: str) -> Any:
    # the app imports FastAPI and the rest of the extra: only when it is asked for, so that
    # `import dagfetch.web` (and the `serve` command's help) work without the extra
    if name in ("create_app", "app_from_environment"):
        from dagfetch.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app_from_environment", "create_app", "missing_modules"]
