"""What a DAG file imports, read without running it: the extraction worker imports those of
preloaded packages before it forks the file's child (see :mod:`~dagfetch.graphs.worker.zygote`).
"""

from __future__ import annotations

import ast
from pathlib import Path

MAX_SCANNED_BYTES = 1 << 20


def imported_names(path: Path) -> set[str]:
    """The absolute module names that a Python file's module-level ``import`` statements
    name (also inside a module-level ``if``, ``try`` or ``with``; not those run only when a
    function is called), read with :mod:`ast`, never run; nothing for a file that is too
    large or does not parse."""
    try:
        if path.stat().st_size > MAX_SCANNED_BYTES:
            return set()
        statements = list(ast.parse(path.read_bytes(), str(path)).body)
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    while statements:
        node = statements.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, ()))
        elif isinstance(node, ast.ExceptHandler):
            statements.extend(node.body)
    return names
