"""The fault runner itself: discovery, counting, the table in the docs, the results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.faults import REGISTRY, FaultClass, Outcome, fault_class
from benchmarks.faults.runner import (
    BEGIN,
    END,
    load_classes,
    main,
    run_class,
    write_docs,
)


def test_every_module_of_the_package_is_discovered() -> None:
    classes = load_classes()
    for name in ("kill-sync", "kill-gc", "kill-sync-extract", "full-disk", "concurrent",
                 "damaged-cache"):
        assert name in classes


def test_a_class_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        fault_class("kill-sync", "sync", "again")(lambda scratch, n: Outcome(True))


def test_outcomes_are_counted_and_a_crashing_attempt_is_a_failure() -> None:
    def flaky(scratch: Path, number: int) -> Outcome:
        assert scratch.is_dir() and not any(scratch.iterdir())
        if number == 1:
            return Outcome(False, partial_version=True, detail="half a tree")
        if number == 2:
            raise RuntimeError("boom")
        return Outcome(True)

    result = run_class(FaultClass("flaky", "test", "a test class", flaky), 4)
    assert (result.attempts, result.survived, result.failed) == (4, 2, 2)
    assert result.partial_versions == 1
    assert result.failures[0] == "attempt 1: half a tree"
    assert "RuntimeError: boom" in result.failures[1]


def test_the_table_goes_between_the_markers_and_the_rest_stays(tmp_path: Path) -> None:
    docs = tmp_path / "reliability.md"
    docs.write_text(f"# Reliability\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    result = run_class(FaultClass("ok", "test", "always fine",
                                  lambda scratch, n: Outcome(True)), 3)
    write_docs([result], docs)
    text = docs.read_text()
    assert "old table" not in text and "before" in text and "after" in text
    assert "| `ok` | test | always fine | 3 | 3 | 0 | 0 | 0 | 0 |" in text


def test_the_command_writes_results_json(tmp_path: Path) -> None:
    REGISTRY.setdefault("always-ok", FaultClass("always-ok", "selftest", "nothing happens",
                                                lambda scratch, n: Outcome(True), 5, 2))
    out = tmp_path / "faults.json"
    assert main(["--quick", "--only", "selftest", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["quick"] and [c["name"] for c in data["classes"]] == ["always-ok"]
    assert data["classes"][0]["attempts"] == 2
