"""Turn a cached version's DAG files into graphs, in isolated worker processes.

DAG files are code that anyone who can push to a repository can change: they may hang, fork,
print, leak modules, read the environment, call ``sys.exit`` or crash the interpreter. So they
run in :mod:`dagfetch.graphs.worker`: clean worker interpreters (never a re-import of the
caller's ``__main__``) that fork a fresh child per file, with a scrubbed environment, their
stdout/stderr away from dagfetch's, a time limit enforced on both sides, and a JSON-only
protocol the syncing process checks (it never unpickles anything). A file that raises, times
out, kills its process or sends garbage becomes an *import error*, and the other files go on.
The version folder is importable while a file runs (``from lib.utils import x`` resolves
inside the version, see :mod:`dagfetch.importing`), and two versions never share a module.

Which objects are DAGs is decided by *extractors*: callables ``(module) -> Iterable[Graph]``
registered under the entry-point group ``dagfetch.extractors``. The built-in ``dag-shape``
extractor takes any module-level object with a string ``dag_id`` and ``tasks`` whose items
have ``task_id`` and ``downstream_task_ids``: Apache Airflow's DAG objects have that shape, so
Airflow DAG files work without dagfetch depending on Airflow. An extractor may carry two
attributes the worker honours:

- ``preload: tuple[str, ...]``: modules imported once per worker before any file is forked
  (Airflow costs seconds to import; a fork of a warm interpreter costs milliseconds);
- ``environment: Mapping[str, str]``: variables the worker sets for the DAG files (for
  example ``AIRFLOW_HOME``); a variable the configuration passes keeps its value.
"""
from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from dagfetch._entrypoints import entry_points
from dagfetch.errors import ConfigError
from dagfetch.graphs.model import Edge, Graph, Task
from dagfetch.graphs.worker.environment import known_secrets
from dagfetch.graphs.worker.pool import WorkerPool
from dagfetch.graphs.worker.protocol import FileResult, duplicate_text
from dagfetch.graphs.worker.settings import WorkerSettings
from dagfetch.importing import dag_files
from dagfetch.redact import get_logger

log = get_logger(__name__)

GROUP = "dagfetch.extractors"
DEFAULT_EXTRACTOR = "dag-shape"
BUILTIN_EXTRACTORS = {DEFAULT_EXTRACTOR: "dagfetch.graphs.extract:dag_shaped_objects"}

Extractor = Callable[[ModuleType], Iterable[Graph]]


# -- extractors -----------------------------------------------------------------------------

def available_extractors() -> dict[str, str]:
    """Extractor name -> ``module:attr``. Built-ins win over a plug-in of the same name."""
    found = {ep.name: ep.value for ep in entry_points(GROUP)}
    found.update(BUILTIN_EXTRACTORS)
    return found


def resolve_extractors(names: Sequence[str] | None) -> list[str]:
    """``module:attr`` references for the named extractors; default: the built-in one."""
    if names and all(":" in name for name in names):
        return list(names)  # references already: no need to read every entry point
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


# -- the parent side ------------------------------------------------------------------------

@attrs.frozen
class ExtractResult:
    """What a version's DAG files gave: ``(path, graph)`` pairs and ``path -> traceback``."""

    root: Path
    files: int
    graphs: tuple[tuple[str, Graph], ...]
    errors: dict[str, str]
    seconds: float
    #: each file's own outcome, before dag_ids were checked across files (what a later
    #: extraction of a version that changed only some DAG files carries over)
    outcomes: Mapping[str, FileResult] = attrs.field(factory=dict, eq=False, repr=False)
    parsed: int = 0  # files actually run (the others were carried over)
    #: the extractors' wording of a dag_id defined twice (see extract_version), kept for the
    #: next extraction in case it parses no file
    duplicate_message: str | None = None
    #: the fingerprint of the secrets every outcome was checked against (see
    #: :class:`~dagfetch.graphs.worker.environment.KnownSecrets`): a later extraction that
    #: carries these outcomes over under the same secrets need not check them again
    secrets_checked: str | None = attrs.field(default=None, eq=False, repr=False)


def extract_version(
    root: str | Path,
    *,
    files: Sequence[str] | None = None,
    extractors: Sequence[str] | None = None,
    file_timeout: float | None = None,
    settings: WorkerSettings | None = None,
    environ: Mapping[str, str] | None = None,
    carried: Mapping[str, FileResult] | None = None,
    pool: WorkerPool | None = None,
    duplicate_message: str | None = None,
    carried_checked: str | None = None,
) -> ExtractResult:
    """Parse the DAG files of a version folder (default: :func:`dagfetch.importing.dag_files`)
    in worker processes (:mod:`dagfetch.graphs.worker`), each file within ``file_timeout``
    seconds (default: ``settings.file_timeout``). ``environ`` (default ``os.environ``) is
    what the workers' scrubbed environment is taken from, and whose secrets are masked.
    ``carried``: outcomes of files known not to have changed (see
    :mod:`dagfetch.graphs.carryover`), used instead of running those files again.
    ``pool``: warm workers to parse in (they must be the ones these arguments would start);
    default: workers started for this call and stopped after it. A ``dag_id`` that a second
    file defines again makes that file an import error, in the words of the first extractor
    that has a ``duplicate_message`` (Airflow's own, for the ``airflow`` extractor; else
    ``duplicate_message`` as given, else dagfetch's). ``carried_checked``: the
    ``secrets_checked`` of the extraction ``carried`` comes from; when the secrets known now
    are the same, the carried graphs are not searched for secrets again."""
    root = Path(root).resolve()
    started = time.monotonic()
    settings = settings or WorkerSettings()
    if file_timeout is not None:
        settings = attrs.evolve(settings, file_timeout=file_timeout)
    environ = os.environ if environ is None else environ
    wanted = list(dag_files(root) if files is None else files)
    refs = resolve_extractors(extractors)
    wanted_set = set(wanted)
    carried = {rel: outcome for rel, outcome in (carried or {}).items() if rel in wanted_set}
    to_parse = [rel for rel in wanted if rel not in carried]
    if pool is not None and not pool.serves(refs, settings, environ):
        raise ValueError("the worker pool was started for other extractors or settings")
    workers = pool if pool is not None else WorkerPool(refs, settings, environ)
    try:
        outcomes = {**carried, **workers.parse(root, to_parse)}
        duplicate_message = workers.duplicate_message or duplicate_message
    finally:
        if workers is not pool:
            workers.close()
    secrets = known_secrets(environ)
    mask = secrets.mask
    found = {rel: result.graphs for rel, result in outcomes.items() if result.error is None}
    errors = {rel: result.error for rel, result in outcomes.items() if result.error is not None}
    # the carried graphs passed this search in the extraction they come from: again only
    # when a secret became known since (999 JSON documents searched for one changed file)
    recheck = carried_checked is None or carried_checked != secrets.fingerprint
    suspects = found if recheck else {rel: found[rel] for rel in to_parse if rel in found}
    for rel in [rel for rel, graphs in suspects.items() if _holds_a_secret(graphs, mask)]:
        # DAG code may have read a secret (its parent's /proc/<pid>/environ, a file) and
        # named a task after it: such a graph never reaches the database
        del found[rel]
        errors[rel] = "a graph of this file holds a secret known to dagfetch (not recorded)"
    # tracebacks go to the database: mask every secret this process knows (connections,
    # secret-looking variables of the environment)
    errors = {rel: mask(message) for rel, message in errors.items()}
    # each file's own outcome as the store may see it (what is carried over, and kept on
    # disk for the next process): errors masked, no graph holding a secret
    outcomes = {rel: FileResult(rel, (), errors[rel]) if rel in errors else outcome
                for rel, outcome in outcomes.items()}
    graphs = _dedupe(root, found, errors, duplicate_message)
    errors = {rel: mask(message) for rel, message in errors.items()}
    seconds = time.monotonic() - started
    log.info("%s: %d files (%d parsed, %d carried over), %d DAGs, %d import errors in %.2fs",
             root, len(wanted), len(to_parse), len(carried), len(graphs), len(errors), seconds)
    return ExtractResult(root, len(wanted), tuple(graphs), errors, seconds, outcomes,
                         len(to_parse), duplicate_message, secrets.fingerprint)


def _holds_a_secret(graphs: Sequence[Graph], mask: Callable[[str], str]) -> bool:
    text = json.dumps([graph.to_json() for graph in graphs])
    return mask(text) != text


def _dedupe(
    root: Path, found: Mapping[str, Sequence[Graph]], errors: dict[str, str],
    template: str | None,
) -> list[tuple[str, Graph]]:
    """One graph per dag_id: within a file the first extractor wins; a dag_id that a second
    file defines again is left out and makes that file an import error, worded by
    ``template`` (its ``{file}`` and ``{other}`` are full paths, as in Airflow's message).
    The file's other DAGs are kept, as Airflow's ``DagBag`` keeps them; of two such dag_ids
    in one file, the message names the last, as ``DagBag``'s does."""
    owner: dict[str, str] = {}
    out: list[tuple[str, Graph]] = []
    for rel in sorted(found):
        for graph in found[rel]:
            other = owner.get(graph.dag_id)
            if other == rel:
                continue
            if other is not None:
                errors[rel] = duplicate_text(template, graph.dag_id, str(root / rel),
                                             str(root / other)) if template else (
                    f"DAG {graph.dag_id!r} is already defined in {other}; "
                    "dag_id must be unique across the repository")
                continue
            owner[graph.dag_id] = rel
            out.append((rel, graph))
    return out
