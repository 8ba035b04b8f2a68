"""The ``dagfetch`` command's start-up as a whole process, beside the floor it stands on:
``dagfetch --version`` against ``python -c "import click"`` (the same interpreter, the same
click) and a bare ``python -c pass``. What each command may import is asserted by
tests/cli/test_startup.py; this measures what it costs."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.harness import Config, Row, Target, ratio_target, row
from benchmarks.process import DAGFETCH

VERSION = "dagfetch --version"
CLICK = 'python -c "import click"'


def startup(config: Config) -> tuple[list[Row], list[Target]]:
    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    # more runs than elsewhere: each is tens of milliseconds and the machine is noisy
    many = config if config.quick else Config(False, max(config.repeat, 15), 2, config.workdir)
    rows = [
        row("cli start-up", VERSION, lambda: run(str(DAGFETCH), "--version"), many),
        row(
            "cli start-up",
            CLICK,
            lambda: run(sys.executable, "-c", "import click"),
            many,
            baseline_for=VERSION,
        ),
        row(
            "cli start-up",
            "python -c pass",
            lambda: run(sys.executable, "-c", "pass"),
            many,
            baseline_for=VERSION,
        ),
    ]
    return rows, [ratio_target("cli start-up", VERSION, CLICK, 1.3)]


SCENARIOS = {"startup": startup}
