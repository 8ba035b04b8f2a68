"""The ``airflow`` graph extractor: the DAGs Airflow's own parser finds in a DAG file.

Airflow 3's parser (``airflow.dag_processing.importers.python_importer``) takes two kinds of
DAG from a module: every module-level ``DAG`` object, and every DAG *auto-registered* while
the module ran, i.e. each ``with DAG(...)`` block and each ``@dag`` function call, bound to a
name or not (``DagContext.autoregistered_dags``). Then ``DagBag.bag_dag`` validates each:
``dag.validate()``, the cycle check, the cluster policies. This extractor does the same to the
module dagfetch imported, so a file is parsed once:

- Airflow records an auto-registered DAG against the module named by
  ``DagContext.current_autoregister_module_name``, which its own importer sets just before it
  runs a file. dagfetch runs the file itself, so this module points that name at a placeholder
  module and replaces the registry with :class:`_RegisteredDags`, which remembers for each DAG
  which modules were running (``<module>`` frames) when it was registered. A DAG counts for a
  file when the file's module was among them: a ``@dag`` factory in a helper module counts
  for the DAG file that called it, and what a file that failed to import registered never
  leaks into the next file.
- A DAG that Airflow would refuse makes the file an import error carrying Airflow's message
  (``AirflowDagCycleException: Cycle detected in DAG: ...``); a DAG a cluster policy skips
  (``AirflowClusterPolicySkipDag``) is left out, as Airflow does.
- Airflow's safe mode (``[core] dag_discovery_safe_mode``, on by default) skips files that do
  not mention both "airflow" and "dag": such a file gives no DAGs here either.

A ``dag_id`` defined in two files is the graph extraction's own check (the later file becomes
an import error), in Airflow's words: ``duplicate_message`` is the message of Airflow's
``AirflowDagDuplicatedIdException`` as the installed release words it, with placeholders
dagfetch fills (the message ``DagBag.import_errors`` gives). The extractor declares
``preload`` (Airflow's heavy modules, imported once in a warm worker) and ``environment``
(what Airflow needs to parse without a metadata database) for workers that honour them.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType
from typing import Any

from dagfetch.graphs.model import Edge, Graph, Task

try:
    import airflow.sdk  # noqa: F401 - the extractor is Airflow's parser or nothing
except ImportError as exc:  # pragma: no cover - exercised where Airflow is missing
    raise ImportError(
        "the 'airflow' graph extractor needs Apache Airflow 3 importable where DAG files are "
        f"parsed (pip install 'apache-airflow>=3'): {exc}"
    ) from exc

#: Imported once per warm worker, before any DAG file: what nearly every Airflow DAG file pulls in.
PRELOAD: tuple[str, ...] = (
    "airflow.sdk",
    "airflow.configuration",
    "airflow.settings",
    "airflow.utils.file",
)

_PLACEHOLDER = "_dagfetch_airflow_registering"


def _environment() -> dict[str, str]:
    """Settings Airflow needs to parse DAG files in a worker with no metadata database; what
    the operator set in the environment wins."""
    wanted = {"AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return {key: value for key, value in wanted.items() if key not in os.environ}


class DagRejectedError(Exception):
    """Airflow would not bag a DAG of this file; the message is Airflow's own."""


class _RegisteredDags(set):  # type: ignore[type-arg]  # Airflow's registry is a plain set
    """``DagContext.autoregistered_dags`` that also remembers, per DAG, the modules running
    when it was registered (the names of the ``<module>`` frames on the stack)."""

    def __init__(self) -> None:
        super().__init__()
        self.running: dict[int, tuple[Any, frozenset[str]]] = {}
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        super().add(item)
        dag = item[0] if isinstance(item, tuple) else item
        names = set()
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                name = frame.f_globals.get("__name__")
                if isinstance(name, str):
                    names.add(name)
            frame = frame.f_back  # type: ignore[assignment]
        with self.lock:
            self.running[id(dag)] = (dag, frozenset(names))

    def clear(self) -> None:
        super().clear()
        with self.lock:
            self.running.clear()

    def take_for(self, module_name: str) -> list[Any]:
        """The DAGs registered while ``module_name`` ran; forgets everything registered."""
        with self.lock:
            mine = [dag for dag, names in self.running.values() if module_name in names]
        self.clear()
        return mine


def _install_registry() -> _RegisteredDags:
    """Point Airflow's auto-registration at a placeholder module and a recording registry.
    Done again before each file: Airflow's own importer, if something runs it, resets both."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    sys.modules.setdefault(_PLACEHOLDER, ModuleType(_PLACEHOLDER))
    registry = DagContext.autoregistered_dags
    if not isinstance(registry, _RegisteredDags):
        registry = _RegisteredDags()
        DagContext.autoregistered_dags = registry
    DagContext.current_autoregister_module_name = _PLACEHOLDER
    return registry


_install_registry()


def _dags_of(module: ModuleType) -> list[Any]:
    """Module-level DAGs, then the ones registered while the module ran, each once."""
    from airflow.sdk import DAG

    found: dict[int, Any] = {}
    for value in list(vars(module).values()):
        if isinstance(value, DAG):
            found.setdefault(id(value), value)
    for dag in _install_registry().take_for(module.__name__):
        found.setdefault(id(dag), dag)
    return list(found.values())


def _safe_mode_skips(path: str) -> bool:
    from airflow.configuration import conf
    from airflow.utils.file import might_contain_dag

    return not might_contain_dag(path, conf.getboolean("core", "dag_discovery_safe_mode"))


def _bag(dag: Any, path: str) -> bool:
    """Airflow's checks before it bags a DAG (``DagBag.process_file`` and ``bag_dag``);
    False when a cluster policy skips the DAG."""
    from airflow import settings
    from airflow.exceptions import AirflowClusterPolicySkipDag

    dag.fileloc = path
    try:
        dag.validate()
        dag.check_cycle()
        settings.dag_policy(dag)  # type: ignore[no-untyped-call]  # Airflow's hook
        for task in dag.tasks:
            settings.task_policy(task)  # type: ignore[no-untyped-call]
    except AirflowClusterPolicySkipDag:
        return False
    except Exception as exc:
        raise DagRejectedError(f"{type(exc).__name__}: {exc}") from exc
    return True


def _task(task: Any) -> Task:
    kind = getattr(task, "task_type", None)
    group = getattr(getattr(task, "task_group", None), "group_id", None)
    return Task(
        task.task_id,
        kind if isinstance(kind, str) else type(task).__qualname__,
        {"task_group": group} if isinstance(group, str) else {},
    )


def graph_of(dag: Any) -> Graph:
    """One Airflow DAG as a dagfetch graph: task ids with their operator class (and task group,
    when in one), and the edges between them."""
    tasks = list(dag.tasks)
    return Graph.of(
        dag.dag_id,
        [_task(task) for task in tasks],
        [Edge(task.task_id, down) for task in tasks for down in sorted(task.downstream_task_ids)],
    )


class AirflowExtractor:
    """The callable registered as the ``airflow`` extractor (``(module) -> Iterable[Graph]``)."""

    preload: tuple[str, ...] = PRELOAD

    @property
    def environment(self) -> Mapping[str, str]:
        return _environment()

    def warm_up(self) -> None:
        """Build, check and drop one small DAG, in the warm worker before any DAG file: Airflow
        imports its timetables, assets and serialization models on the first DAG it builds,
        which would otherwise cost every forked child that work again. Airflow's own code
        only, never a DAG file's; what it registers is forgotten. Also makes the worker's
        forks skip Airflow's at-fork disposal of connection pools that hold nothing
        (:mod:`dagfetch_airflow.forking`)."""
        from airflow.sdk import DAG, task

        from dagfetch_airflow import forking

        forking.install()  # the worker's forks skip Airflow's disposal of its empty pools
        registry = _install_registry()
        for schedule in ({"schedule": None}, {}):  # no schedule: Airflow's default timetable
            with DAG("_dagfetch_warm_up", **schedule) as warm:  # type: ignore[arg-type]
                @task
                def first() -> None: ...

                @task
                def second() -> None: ...

                first() >> second()
            _bag(warm, __file__)
            graph_of(warm)
        registry.clear()

    @property
    def duplicate_message(self) -> str:
        """``DagBag.import_errors``' text for a ``dag_id`` already bagged from another file,
        with ``{dag_id}``, ``{file}`` and ``{other}`` for dagfetch to fill."""
        from airflow.exceptions import AirflowDagDuplicatedIdException

        error = AirflowDagDuplicatedIdException(dag_id="{dag_id}", incoming="{file}",
                                                existing="{other}")
        return f"{type(error).__name__}: {error}"

    def __call__(self, module: ModuleType) -> Iterable[Graph]:
        return list(self._graphs(module))

    def _graphs(self, module: ModuleType) -> Iterator[Graph]:
        path = getattr(module, "__file__", None) or ""
        dags = _dags_of(module)
        if path and _safe_mode_skips(path):
            return
        for dag in sorted(dags, key=lambda d: str(d.dag_id)):
            if _bag(dag, path):
                yield graph_of(dag)


airflow_dags = AirflowExtractor()
