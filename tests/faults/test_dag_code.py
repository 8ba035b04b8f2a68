"""Hostile DAG files (benchmarks/faults/dag_code.py), a few attempts each in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import benchmarks.faults.dag_code  # noqa: F401  (registers the classes)
from benchmarks.faults import REGISTRY

DAG_CODE = sorted(name for name, cls in REGISTRY.items() if cls.group == "dag-code")


def test_every_dag_code_class_is_registered() -> None:
    assert len(DAG_CODE) == 9


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the invariants read /proc")
@pytest.mark.parametrize("name", DAG_CODE)
def test_hostile_dag_files_leave_every_invariant_intact(name: str, tmp_path: Path) -> None:
    fault = REGISTRY[name]
    for number in range(fault.quick_attempts):
        scratch = tmp_path / f"attempt-{number}"
        scratch.mkdir()
        outcome = fault.run(scratch, number)
        assert outcome.survived, outcome.detail
