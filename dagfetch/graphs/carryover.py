"""Re-extract only what can have changed.

A DAG file's graph depends on the file, on everything it imports from its version (helper
modules, packages), on what it reads (data files), and on the extractors. So when the only
files that differ between the previous extracted version of a repository and the new one are
DAG files, the graphs and import errors of the unchanged DAG files are carried over and only
the changed ones run; a change to any other file (a helper, an ``__init__.py``, a YAML the
DAGs read) parses everything again. dag_ids are checked across files again afterwards, so a
DAG moved from one file to another is still seen twice or once as it should.

What the previous extraction gave is kept in memory by the pipeline that made it, and on disk
beside the cache (``.dagfetch/carryover/``, one JSON document per repository, written
atomically after the extraction was recorded), so a new process (``dagfetch sync --extract``
run by cron) re-parses only the changed DAG files too. A document is used only when its
version's graphs are in the graph store, and only under the same extractors, the same
``[extract]`` settings, the same interpreter and the same installed distributions (an
upgraded Airflow may parse a file differently); anything else, or a damaged document, parses
everything. It holds what the graph store holds (graphs, import errors with secrets masked)
and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dagfetch.cache.metadata import write_text_atomic
from dagfetch.graphs.model import Graph
from dagfetch.graphs.worker.protocol import FileResult, is_worker_failure
from dagfetch.graphs.worker.settings import WorkerSettings
from dagfetch.redact import get_logger

log = get_logger(__name__)

FORMAT = 1


@attrs.frozen
class PreviousExtraction:
    """What one version gave, and under which configuration."""

    version_id: str
    file_hashes: Mapping[str, str]  # every file of the version -> sha256
    outcomes: Mapping[str, FileResult]  # each DAG file's own outcome
    extractors: tuple[str, ...] | None
    settings: WorkerSettings
    duplicate_message: str | None = None  # the extractors' wording (see extract_version)
    #: see ExtractResult.secrets_checked (kept in memory only: a new process checks again)
    secrets_checked: str | None = attrs.field(default=None, repr=False)
    #: each outcome's JSON as :func:`save` wrote it, by file, beside the outcome it encodes:
    #: the next save re-encodes only the outcomes that are not these very objects
    encoded: dict[str, tuple[FileResult, str]] = attrs.field(factory=dict, eq=False,
                                                             repr=False)


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


# -- kept across processes ------------------------------------------------------------------

@functools.cache
def environment_fingerprint() -> str:
    """The interpreter and every installed distribution with its version: what else decides
    how a DAG file parses (the workers run this interpreter). Not ``sys.path`` itself, whose
    first entry differs between ``python -c``, a script and the ``dagfetch`` command."""
    found = sorted(f"{dist.metadata['Name']}=={dist.version}"
                   for dist in importlib.metadata.distributions())
    text = "\n".join([sys.version, sys.executable, *found])
    return hashlib.sha256(text.encode()).hexdigest()


def _settings_key(settings: WorkerSettings) -> str:
    return json.dumps(attrs.asdict(settings), sort_keys=True, default=list)


def document_path(cache_root: Path, repo_id: str) -> Path:
    name = hashlib.sha256(repo_id.encode()).hexdigest()[:32]
    return cache_root / ".dagfetch" / "carryover" / f"{name}.json"


def save(cache_root: Path, repo_id: str, previous: PreviousExtraction,
         before: PreviousExtraction | None = None) -> None:
    """Keep ``previous`` for the next process; a failure to write costs only that. The
    outcomes ``previous`` carried over from ``before`` (the same objects) are not encoded
    again: their JSON is ``before``'s."""
    head = json.dumps({
        "format": FORMAT, "repo_id": repo_id, "version_id": previous.version_id,
        "environment": environment_fingerprint(), "extractors": previous.extractors,
        "settings": _settings_key(previous.settings),
        "duplicate_message": previous.duplicate_message,
        "file_hashes": dict(previous.file_hashes),
    }, separators=(",", ":"), sort_keys=True)
    known = before.encoded if before is not None else {}
    encoded = previous.encoded
    for rel, outcome in previous.outcomes.items():
        kept = known.get(rel)
        encoded[rel] = kept if kept is not None and kept[0] is outcome else (
            outcome, json.dumps({"graphs": [g.to_json() for g in outcome.graphs],
                                 "error": outcome.error}, separators=(",", ":")))
    outcomes = ",".join(f"{json.dumps(rel)}:{text}" for rel, (_, text) in encoded.items())
    try:
        write_text_atomic(document_path(cache_root, repo_id),
                          f'{head[:-1]},"outcomes":{{{outcomes}}}}}')
    except OSError as exc:
        log.warning("%s: could not keep the extraction for the next process: %s", repo_id, exc)


def load(
    cache_root: Path, repo_id: str, extractors: tuple[str, ...] | None,
    settings: WorkerSettings,
) -> PreviousExtraction | None:
    """The previous extraction a former process kept, if it was made the way this one would
    make it; None otherwise (missing, damaged, another configuration or environment)."""
    path = document_path(cache_root, repo_id)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("%s: ignoring the kept extraction %s: %s", repo_id, path, exc)
        return None
    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
        kept = tuple(data["extractors"]) if data["extractors"] is not None else None
        if (data["format"] != FORMAT or data["repo_id"] != repo_id or kept != extractors
                or data["settings"] != _settings_key(settings)
                or data["environment"] != environment_fingerprint()):
            return None
        outcomes = {rel: _outcome(rel, value) for rel, value in data["outcomes"].items()}
        hashes = {str(p): str(h) for p, h in data["file_hashes"].items()}
        message = data["duplicate_message"]
        return PreviousExtraction(str(data["version_id"]), hashes, outcomes, kept, settings,
                                  message if isinstance(message, str) else None)
    log.info("%s: ignoring the kept extraction %s: not of the shape dagfetch writes",
             repo_id, path)
    return None


def _outcome(rel: str, value: Mapping[str, Any]) -> FileResult:
    error = value["error"]
    if error is not None and not isinstance(error, str):
        raise TypeError("error")
    return FileResult(rel, tuple(Graph.from_json(g) for g in value["graphs"]), error)
