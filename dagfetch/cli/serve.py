"""``dagfetch serve``: the read-only web server (:mod:`dagfetch.web`) over the cache and the
graph store, on 127.0.0.1:8790 unless told otherwise. With ``--watch`` the same process also
syncs and extracts every repository each ``refresh_interval`` (``sync --watch --extract``),
so one process is all a small team needs.

The web server needs the ``web`` extra; without it the command says what to install. Its
imports wait until the command runs, so ``dagfetch --help`` stays light.
"""

from __future__ import annotations

import os
import threading

import click

from dagfetch.cli.app import EXIT_CONFIG, State, errors_as_exit_codes, fail, pass_state
from dagfetch.cli.graph_store import graph_errors, open_store, pipeline_for, store_options


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8790, show_default=True, type=click.IntRange(0, 65535))
@click.option("--watch", is_flag=True, help="Also sync and extract every repository each "
              "refresh_interval, as `sync --watch --extract` does.")
@click.option("--publish", is_flag=True, help="With --watch: publish each synced version "
              "for nodes that sync with --follow.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes; they give the same answers, since they only read "
              "the cache and the database.")
@click.option("--root-path", default="", help="The path a reverse proxy serves it under "
              "(like /dagfetch).")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto headers are believed ('*': any).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@store_options
@pass_state
def serve(state: State, host: str, port: int, watch: bool, publish: bool, workers: int,
          root_path: str, forwarded_allow_ips: str, log_level: str, database: str | None,
          prefix: str) -> None:
    """Serve pages and a JSON API over the cache and the graph store."""
    from dagfetch.web import missing_modules

    missing = missing_modules()
    if missing:
        fail(f"dagfetch serve needs the web extra ({', '.join(missing)} missing): "
             "pip install 'dagfetch[web]'", EXIT_CONFIG)
    if publish and not watch:
        raise click.UsageError("--publish goes with --watch")
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise click.UsageError("--root-path starts with '/' and does not end with one")
    import uvicorn

    from dagfetch.web.app import create_app
    from dagfetch.web.syncing import SyncRunner

    with graph_errors(state):
        workspace = state.workspace
        if watch:
            pipeline = pipeline_for(state, database, prefix)
            store = pipeline.store
        else:
            store = open_store(state, database, prefix)
            from dagfetch.graphs.pipeline import GraphPipeline

            pipeline = GraphPipeline(workspace, store)
        runner = SyncRunner(pipeline, publish=publish)
        app = create_app(workspace, store, runner=runner)
    options = {"host": host, "port": port, "root_path": root_path, "proxy_headers": True,
               "forwarded_allow_ips": forwarded_allow_ips, "log_level": log_level}
    stop = threading.Event()
    loop = threading.Thread(target=runner.watch, args=(stop,), name="dagfetch-watch",
                            daemon=True) if watch else None
    if loop is not None:
        loop.start()
    try:
        with errors_as_exit_codes(state):
            if workers == 1:
                uvicorn.run(app, **options)  # type: ignore[arg-type]
            else:
                # each worker process builds its own app from the same settings
                _export(state, database, prefix)
                uvicorn.run("dagfetch.web.app:app_from_environment", factory=True,
                            workers=workers, **options)  # type: ignore[arg-type]
    finally:
        stop.set()
        store.close()


def _export(state: State, database: str | None, prefix: str) -> None:
    """Hand the command line's choices to the worker processes, through the environment."""
    source = state.workspace.manifest.source
    if source:
        os.environ["DAGFETCH_MANIFEST"] = os.path.abspath(source)
    os.environ["DAGFETCH_HOME"] = str(state.workspace.cache.root)
    if database:
        os.environ["DAGFETCH_DATABASE"] = database
    os.environ["DAGFETCH_TABLE_PREFIX"] = prefix


COMMANDS: tuple[click.Command, ...] = (serve,)
