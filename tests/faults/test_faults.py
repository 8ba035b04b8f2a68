"""Every registered fault class, a few attempts each (its ``quick_attempts``): CI's share of
the fault run whose full table is in docs/reliability.md (``python -m benchmarks --only
faults``). A class's failures name the attempt, so it can be run again alone."""

from __future__ import annotations

import os

import pytest

from benchmarks.faults import FaultClass
from benchmarks.faults.runner import load_classes, run_class

CLASSES = load_classes()


@pytest.mark.parametrize("fault", list(CLASSES.values()), ids=list(CLASSES))
def test_fault_class_survives_its_quick_attempts(fault: FaultClass) -> None:
    if fault.needs_root and os.geteuid() != 0:
        pytest.skip(f"needs root: {fault.needs_root}")
    result = run_class(fault, fault.quick_attempts)
    assert result.attempts == fault.quick_attempts
    assert result.failed == 0, "\n".join(result.failures)


def test_every_group_registers_its_classes() -> None:
    by_group: dict[str, set[str]] = {}
    for name, fault in CLASSES.items():
        by_group.setdefault(fault.group, set()).add(name)
    assert {"remote-stall", "remote-reset", "remote-lying-size", "remote-endless-body",
            "remote-folder-loop", "remote-hostile-names",
            "remote-rewritten-while-read"} <= set(CLASSES)
    assert len(by_group["dag-code"]) == 9
