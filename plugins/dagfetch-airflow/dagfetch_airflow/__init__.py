"""dagfetch-airflow: Apache Airflow 3 as a dagfetch client.

- the ``airflow`` graph extractor (:mod:`dagfetch_airflow.extractor`): exactly the DAGs
  Airflow's own parser finds in a file, with operator classes, edges, task groups, and
  Airflow's own import errors (cycles, cluster policies);
- :class:`DagfetchBundle` (:mod:`dagfetch_airflow.bundle`): an Airflow DAG bundle served from
  the dagfetch cache, versioned for every backend;
- a ``dagfetch.secrets`` source (:mod:`dagfetch_airflow.connections`) resolving a ``conn_id``
  through Airflow's connection lookup.

Everything arrives through entry points; importing this package does not import Airflow
(``DagfetchBundle`` is loaded when first named).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

if TYPE_CHECKING:
    from dagfetch_airflow.bundle import DagfetchBundle


def __getattr__(name: str) -> Any:
    # Airflow's bundle manager imports the classpath `dagfetch_airflow.DagfetchBundle`; the
    # class needs Airflow, so it is built only when named
    if name == "DagfetchBundle":
        from dagfetch_airflow.bundle import DagfetchBundle

        return DagfetchBundle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DagfetchBundle", "__version__"]
