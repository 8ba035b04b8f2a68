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
