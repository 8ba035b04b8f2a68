"""python -m benchmarks.faults: see :mod:`benchmarks.faults.runner`."""

from __future__ import annotations

import sys

from benchmarks.faults.runner import main

if __name__ == "__main__":
    sys.exit(main())
