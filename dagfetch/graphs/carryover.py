"""Re-extract only what can have changed.

A DAG file's graph depends on the file, on everything it imports from its version (helper
modules, packages), on what it reads (data files), and on the extractors. So when the only
files that differ between the previous extracted version of a repository and the new one are
DAG files, the graphs and import errors of the unchanged DAG files are carried over and only
the changed ones run; a change to any other file (a helper, an ``__init__.py``, a YAML the
DAGs read) parses everything again. dag_ids are checked across files again afterwards, so a
DAG moved from one file to another is still seen twice or once as it should.

The previous outcomes are kept in memory by the pipeline that extracted them (with the
extractors and settings they were made with), so a long-running ``sync --watch --extract``
or ``serve --watch`` profits, and a restarted process parses its first version in full.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from dagfetch.graphs.worker.protocol import FileResult, is_worker_failure
from dagfetch.graphs.worker.settings import WorkerSettings


@attrs.frozen
class PreviousExtraction:
    """What one version gave, and under which configuration."""

    version_id: str
    file_hashes: Mapping[str, str]  # every file of the version -> sha256
    outcomes: Mapping[str, FileResult]  # each DAG file's own outcome
    extractors: tuple[str, ...] | None
    settings: WorkerSettings


def carried_outcomes(
    previous: PreviousExtraction | None,
    file_hashes: Mapping[str, str],
    dag_files: Sequence[str],
    extractors: tuple[str, ...] | None,
    settings: WorkerSettings,
) -> dict[str, FileResult]:
    """The outcomes of the new version's DAG files that need not run again (empty: run all)."""
    if previous is None or previous.extractors != extractors or previous.settings != settings:
        return {}
    new_dags, old_dags = set(dag_files), set(previous.outcomes)
    if {p: h for p, h in file_hashes.items() if p not in new_dags} != {
            p: h for p, h in previous.file_hashes.items() if p not in old_dags}:
        return {}  # a helper, a package or a data file changed: anything may have
    return {rel: previous.outcomes[rel] for rel in dag_files
            if rel in previous.outcomes and previous.file_hashes.get(rel) == file_hashes.get(rel)
            and file_hashes.get(rel) is not None
            # a time-out or a crash may not happen again: such a file runs again
            and not is_worker_failure(previous.outcomes[rel].error)}
