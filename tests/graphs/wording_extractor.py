"""The built-in extractor with its own wording of a dag_id defined twice (as Airflow's)."""

from __future__ import annotations

from dagfetch.graphs.extract import dag_shaped_objects


class Worded:
    duplicate_message = "Duplicate {dag_id} in {file}, first in {other}"

    def __call__(self, module):  # type: ignore[no-untyped-def]
        return list(dag_shaped_objects(module))


graphs = Worded()
