"""Turn a cached version's DAG files into graphs, in a separate process, one file at a time.

DAG files are code: they may hang, leak modules, print, call ``sys.exit`` or crash the
interpreter. So they run in a worker process (``spawn``: nothing of the parent's state, no
inherited database connections), each under a time limit. A file that raises, times out, or
kills the worker becomes an *import error* with its traceback, and the other files go on (a
fresh worker takes over after a timeout or a crash). The version folder is importable while a
file runs (``from lib.utils import x`` resolves inside the version, see
:mod:`dagfetch.importing`), and two versions never share a module.

Which objects are DAGs is decided by *extractors*: callables ``(module) -> Iterable[Graph]``
registered under the entry-point group ``dagfetch.extractors``. The built-in ``dag-shape``
extractor takes any module-level object with a string ``dag_id`` and ``tasks`` whose items
have ``task_id`` and ``downstream_task_ids``: Apache Airflow's DAG objects have that shape, so
Airflow DAG files work without dagfetch depending on Airflow.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from dagfetch._entrypoints import entry_points
from dagfetch.errors import ConfigError
from dagfetch.graphs.errors import ExtractionError, InvalidGraphError
from dagfetch.graphs.model import Edge, Graph, Task
from dagfetch.importing import dag_files, import_version
from dagfetch.redact import get_logger, mask

log = get_logger(__name__)

GROUP = "dagfetch.extractors"
DEFAULT_EXTRACTOR = "dag-shape"
BUILTIN_EXTRACTORS = {DEFAULT_EXTRACTOR: "dagfetch.graphs.extract:dag_shaped_objects"}
DEFAULT_FILE_TIMEOUT = 30.0
WORKER_START_TIMEOUT = 120.0

Extractor = Callable[[ModuleType], Iterable[Graph]]


# -- extractors -----------------------------------------------------------------------------

def available_extractors() -> dict[str, str]:
    """Extractor name -> ``module:attr``. Built-ins win over a plug-in of the same name."""
    found = {ep.name: ep.value for ep in entry_points(GROUP)}
    found.update(BUILTIN_EXTRACTORS)
    return found


def resolve_extractors(names: Sequence[str] | None) -> list[str]:
    """``module:attr`` references for the named extractors; default: the built-in one."""
    known = available_extractors()
    refs = []
    for name in names or [DEFAULT_EXTRACTOR]:
        if name in known:
            refs.append(known[name])
        elif ":" in name:
            refs.append(name)  # a direct module:attr reference
        else:
            raise ConfigError(f"no graph extractor {name!r} (known: {', '.join(sorted(known))}; "
                              f"plug-ins register under the entry-point group {GROUP!r})")
    return refs


def load_extractor(ref: str) -> Extractor:
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"graph extractor {ref!r} cannot be loaded: {exc}") from exc
    if not callable(obj):
        raise ConfigError(f"graph extractor {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _attr(obj: object, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def dag_shaped_objects(module: ModuleType) -> Iterator[Graph]:
    """Module-level objects shaped like a DAG: ``dag_id`` (str) and ``tasks``, each task with
    ``task_id`` and ``downstream_task_ids``. A task's kind is its class name."""
    seen: set[int] = set()
    for obj in list(vars(module).values()):
        if isinstance(obj, (type, ModuleType)) or id(obj) in seen:
            continue
        dag_id = _attr(obj, "dag_id")
        tasks = _attr(obj, "tasks")
        if not isinstance(dag_id, str) or tasks is None or isinstance(tasks, (str, bytes)):
            continue
        try:
            task_list = list(tasks)
        except TypeError:
            continue
        if not all(isinstance(_attr(t, "task_id"), str)
                   and _attr(t, "downstream_task_ids") is not None for t in task_list):
            continue
        seen.add(id(obj))
        yield Graph.of(
            dag_id,
            [Task(t.task_id, type(t).__qualname__) for t in task_list],
            [Edge(t.task_id, d) for t in task_list for d in t.downstream_task_ids],
        )


# -- the worker process ---------------------------------------------------------------------

def _worker(conn: Connection, root: str, files: list[str], refs: list[str]) -> None:
    try:
        extractors = [load_extractor(r) for r in refs]
    except Exception:
        conn.send(("fatal", traceback.format_exc()))
        return
    for rel in files:
        conn.send(("start", rel))
        graphs: list[dict[str, Any]] = []
        error: str | None = None
        sink = io.StringIO()  # a DAG file's prints must not reach the parent's output
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            imported = import_version(root, [rel])
            if rel in imported.errors:
                error = imported.errors[rel]
            else:
                try:
                    for extractor in extractors:
                        graphs.extend(g.to_json() for g in extractor(imported.modules[rel]))
                except Exception:
                    error = traceback.format_exc()
        conn.send(("done", rel, [] if error else graphs, error))
    conn.send(("end",))


# -- the parent side ------------------------------------------------------------------------

@attrs.frozen
class ExtractResult:
    """What a version's DAG files gave: ``(path, graph)`` pairs and ``path -> traceback``."""

    root: Path
    files: int
    graphs: tuple[tuple[str, Graph], ...]
    errors: dict[str, str]
    seconds: float


def extract_version(
    root: str | Path,
    *,
    files: Sequence[str] | None = None,
    extractors: Sequence[str] | None = None,
    file_timeout: float = DEFAULT_FILE_TIMEOUT,
) -> ExtractResult:
    """Parse the DAG files of a version folder (default: :func:`dagfetch.importing.dag_files`)
    in a worker process, each within ``file_timeout`` seconds."""
    root = Path(root).resolve()
    started = time.monotonic()
    pending = list(dag_files(root) if files is None else files)
    total = len(pending)
    refs = resolve_extractors(extractors)
    found: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    ctx = multiprocessing.get_context("spawn")
    while pending:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(child, str(root), pending, refs),
                           name="dagfetch-extract", daemon=True)
        proc.start()
        child.close()
        current: str | None = None
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        try:
            while True:
                wait = deadline - time.monotonic()
                try:
                    ready = parent.poll(max(wait, 0.0))
                    msg = parent.recv() if ready else None
                except EOFError:
                    proc.join(5)
                    msg = ("died", proc.exitcode)
                if msg is None:  # time is up
                    if current is None:
                        raise ExtractionError("the DAG parser process did not start within "
                                              f"{WORKER_START_TIMEOUT:.0f}s")
                    errors[current] = (f"timed out: importing {current} took longer than "
                                       f"{file_timeout:g}s (the file was abandoned)")
                    break
                if msg[0] == "fatal":
                    raise ExtractionError(f"graph extractors failed to load:\n{msg[1]}")
                if msg[0] == "died":
                    if current is None:
                        raise ExtractionError(f"the DAG parser process exited with code {msg[1]} "
                                              "before parsing anything")
                    errors[current] = (f"the parser process died (exit code {msg[1]}) while "
                                       f"importing {current}")
                    break
                if msg[0] == "start":
                    current = msg[1]
                    deadline = time.monotonic() + file_timeout
                elif msg[0] == "done":
                    _, rel, graphs, error = msg
                    if error:
                        errors[rel] = error
                    else:
                        found[rel] = graphs
                    pending.remove(rel)
                    current = None
                    deadline = time.monotonic() + WORKER_START_TIMEOUT
                elif msg[0] == "end":
                    break
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            parent.close()
        if current is not None:
            pending.remove(current)
    graphs = _dedupe(found, errors)
    # tracebacks go to the database: mask every secret this process knows (connections...)
    errors = {rel: mask(message) for rel, message in errors.items()}
    seconds = time.monotonic() - started
    log.info("%s: %d files, %d DAGs, %d import errors in %.2fs", root, total, len(graphs),
             len(errors), seconds)
    return ExtractResult(root, total, tuple(graphs), errors, seconds)


def _dedupe(
    found: dict[str, list[dict[str, Any]]], errors: dict[str, str]
) -> list[tuple[str, Graph]]:
    """One graph per dag_id: within a file the first extractor wins; a dag_id that a second
    file defines again makes that file an import error (as Airflow does)."""
    owner: dict[str, str] = {}
    out: list[tuple[str, Graph]] = []
    for rel in sorted(found):
        mine: list[tuple[str, Graph]] = []
        problem = None
        for data in found[rel]:
            try:
                graph = Graph.from_json(data)
            except InvalidGraphError as exc:
                problem = str(exc)
                break
            if graph.dag_id in owner:
                problem = (f"DAG {graph.dag_id!r} is already defined in {owner[graph.dag_id]}; "
                           "dag_id must be unique across the repository")
                break
            if any(g.dag_id == graph.dag_id for _, g in mine):
                continue
            mine.append((rel, graph))
        if problem:
            errors[rel] = problem
            continue
        for rel_, graph in mine:
            owner[graph.dag_id] = rel_
        out.extend(mine)
    return out
