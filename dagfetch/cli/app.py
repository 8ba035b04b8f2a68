"""What every command shares: the options of the top-level group (:class:`State`), dagfetch
errors as exit codes, and output (:func:`emit`, ``--json``, JSON Lines).

Exit codes scripts can rely on:

===  ====================================================================
0    success
1    at least one repository failed to sync (the others were synced)
2    bad usage or configuration: manifest, connection, unknown scheme
3    not found: no such version in the cache, nor on the remote
4    any other dagfetch error (cache unusable, lock timeout, ...)
130 interrupted (Ctrl-C), at any moment: no traceback (:mod:`dagfetch._console`)
===  ====================================================================

Command modules import this one and nothing of each other (the graph store's plumbing in
:mod:`dagfetch.cli.graph_store` aside). It imports only click and dagfetch's errors at load
time (not even logging, JSON or the masking of secrets), so ``dagfetch --help`` and
``--version`` stay as light as click itself; the workspace is imported and built when a
command first asks for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.core import ParameterSource

from dagfetch.errors import (
    ConfigError,
    DagfetchError,
    RegistryError,
    VersionNotFoundError,
    VersionUnavailableError,
)

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from dagfetch.workspace import Workspace

#: the names ``--log-level`` takes (:mod:`dagfetch.cli.logs`, imported when a command runs)
LEVEL_NAMES = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

EXIT_SYNC_FAILED = 1
EXIT_CONFIG = 2
EXIT_NOT_FOUND = 3
EXIT_ERROR = 4

F = TypeVar("F", bound=Callable[..., Any])

#: set by the executable (:mod:`dagfetch._console`): freeze start-up's objects once a command's
#: workspace is built. Never in a process that calls the command group itself (a test's
#: CliRunner, a script), whose objects the collector must keep seeing.
FREEZE_START_UP = False


def _start_up_done() -> None:
    """In the executable, move every object allocated so far (modules, classes, functions of
    click, attrs and dagfetch, the manifest: some 28,000, all living as long as the process)
    out of the collector's generations (``gc.freeze``), once.

    The executable's raised threshold alone only postpones the first collection: a no-change
    sync of 2,000 files went past it while reading its version's record, and that one
    collection walked every object of start-up, 10 ms. Frozen, a collection walks only what
    the command itself allocated since the last one."""
    global FREEZE_START_UP
    if FREEZE_START_UP:
        FREEZE_START_UP = False
        import gc

        gc.freeze()


class State:
    """Options of the top-level group; the workspace is built on first use."""

    def __init__(self, manifest: str | None, home: str | None, debug: bool) -> None:
        # absolute from the start: every path a command prints (errors naming the manifest,
        # `path`, `init`) is then absolute, also with `--home .dagfetch-home`
        self.manifest = os.path.abspath(manifest) if manifest else None
        self.home = os.path.abspath(home) if home else None
        self.debug = debug
        self._workspace: Workspace | None = None

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from dagfetch.workspace import Workspace

            self._workspace = Workspace.from_manifest(self.manifest, cache_root=self.home)
            _start_up_done()
        return self._workspace


pass_state = click.make_pass_decorator(State)


# -- shell completion ------------------------------------------------------------------------

def completion_state(ctx: click.Context) -> State:
    """The top-level options as parsed so far, while the shell asks for completions (the
    group's callback does not run then, so ``ctx.obj`` is not set)."""
    root = ctx.find_root()
    return State(root.params.get("manifest"), root.params.get("home"), debug=False)


def complete_repo_ids(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The manifest's repository ids starting with ``incomplete``; nothing when there is no
    readable manifest (a completion never prints an error into the shell)."""
    from click.shell_completion import CompletionItem

    from dagfetch.manifest import load_manifest
    from dagfetch.workspace import find_manifest

    try:
        ids = load_manifest(find_manifest(completion_state(ctx).manifest)).ids
    except DagfetchError:
        return []
    return [CompletionItem(repo_id) for repo_id in ids if repo_id.startswith(incomplete)]


def fail(message: str, code: int) -> NoReturn:
    from dagfetch.redact import mask

    click.echo(f"dagfetch: error: {mask(message)}", err=True)
    sys.exit(code)


@contextmanager
def errors_as_exit_codes(state: State) -> Iterator[None]:
    """Turn dagfetch errors into one clear line and an exit code; tracebacks only on --debug."""
    try:
        yield
    except DagfetchError as exc:
        if state.debug:
            raise
        if isinstance(exc, (ConfigError, RegistryError)):
            fail(str(exc), EXIT_CONFIG)
        if isinstance(exc, (VersionNotFoundError, VersionUnavailableError)):
            fail(str(exc), EXIT_NOT_FOUND)
        fail(str(exc), EXIT_ERROR)


# -- output -----------------------------------------------------------------------------------

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def emit(as_json: bool, data: Any, text: Callable[[], None], *, json_lines: bool = False) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``text``. With ``json_lines`` (a
    command that keeps printing, such as ``sync --watch``), ``data`` is a sequence and each
    item goes on a line of its own, compact, so a consumer can act on every line as it comes
    (``click.echo`` flushes after each line, also into a pipe)."""
    import json

    if not as_json:
        text()
    elif json_lines:
        for item in data:
            click.echo(json.dumps(item, sort_keys=True, separators=(",", ":"), default=str))
    else:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def format_options(formats: Sequence[str]) -> Callable[[F], F]:
    """``--format`` (one of ``formats``, ``text`` by default) and ``--json``, which means
    ``--format json``. The command reads the two with :func:`chosen_format`."""
    def decorate(f: F) -> F:
        f = json_option(f)
        return click.option(
            "--format", "fmt", type=click.Choice(list(formats)), default="text",
            show_default=True, help="How to print it (--json is --format json).",
        )(f)

    return decorate


def chosen_format(fmt: str, as_json: bool) -> str:
    """The one format ``--format`` and ``--json`` ask for; a contradiction is a usage error."""
    if not as_json:
        return fmt
    ctx = click.get_current_context()
    if fmt != "json" and ctx.get_parameter_source("fmt") is not ParameterSource.DEFAULT:
        raise click.UsageError(f"--json means --format json; it contradicts --format {fmt}",
                               ctx=ctx)
    return "json"
