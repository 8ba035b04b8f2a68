"""The remote side's fault classes (benchmarks/faults/remotes.py), a few attempts each: a
server that stalls, resets, lies about sizes, sends for ever or loops its folders, a remote
of hostile names, files rewritten while read. Every invariant must hold on every attempt."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from benchmarks.faults import REGISTRY

importlib.import_module("benchmarks.faults.remotes")
REMOTE_CLASSES = sorted(name for name, fault in REGISTRY.items()
                        if fault.run.__module__ == "benchmarks.faults.remotes")


def test_the_remote_classes_are_registered() -> None:
    assert {"remote-stall", "remote-reset", "remote-lying-size", "remote-endless-body",
            "remote-folder-loop", "remote-hostile-names",
            "remote-rewritten-while-read"} <= set(REMOTE_CLASSES)


@pytest.mark.parametrize("name", REMOTE_CLASSES)
def test_every_attempt_survives(name: str, tmp_path: Path) -> None:
    fault = REGISTRY[name]
    for attempt in range(fault.quick_attempts):
        scratch = tmp_path / f"attempt-{attempt}"
        scratch.mkdir()
        outcome = fault.run(scratch, attempt)
        assert outcome.survived, f"{name} attempt {attempt}: {outcome.detail}"
        assert not (outcome.lost_data or outcome.partial_version or outcome.escaped)
