"""The package's import rules (docs/architecture.md), read from the source with ``ast``.

Imports inside functions count: a lazy import is still a dependency, and a cycle through one
is still a cycle. ``TYPE_CHECKING`` imports count too, so the rules hold for readers of the
code, not only at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dagfetch"

# Modules of the core that must never learn about a particular backend (issue: the registry
# knows no backend; the cache and sync are the same for every backend).
CORE = (
    "dagfetch.registry",
    "dagfetch.sync",
    "dagfetch.cache",
    "dagfetch.manifest",
    "dagfetch.selection",
    "dagfetch.protocol",
    "dagfetch.models",
    "dagfetch.errors",
    "dagfetch.paths",
    "dagfetch.options",
    "dagfetch.limits",
    "dagfetch.team",
)
# The composition root: the one place outside the backends that wires built-in backends in.
COMPOSITION_ROOT = "dagfetch.defaults"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """The dagfetch modules ``path`` (module ``name``) imports, resolved to known modules.

    ``from pkg import sub`` depends on the submodule ``pkg.sub`` when there is one, and on
    ``pkg`` itself (its ``__init__``) only for names that are not submodules."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        for target in targets:
            if not target.startswith("dagfetch"):
                continue
            parts = target.split(".")
            for i in range(len(parts), 0, -1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    if candidate != name:
                        yield candidate
                    break


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: set(imported(path, name, known)) for name, path in found.items()}


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("core", CORE)
def test_core_imports_no_backend(core: str) -> None:
    edges = graph()
    offenders = {
        (name, dep)
        for name, deps in edges.items()
        if name == core or name.startswith(core + ".")
        for dep in deps
        if dep.startswith("dagfetch.backends")
    }
    assert not offenders, f"{core} imports a backend: {sorted(offenders)}"


def test_only_the_composition_root_imports_backends() -> None:
    offenders = sorted(
        (name, dep)
        for name, deps in graph().items()
        if not name.startswith("dagfetch.backends") and name != COMPOSITION_ROOT
        for dep in deps
        if dep.startswith("dagfetch.backends")
    )
    assert not offenders, f"only {COMPOSITION_ROOT} may import dagfetch.backends: {offenders}"


def test_the_rules_see_real_imports() -> None:
    """The reader must find imports it is meant to find, or every rule above passes vacuously."""
    edges = graph()
    assert "dagfetch.errors" in edges["dagfetch.sync"]
    assert any(d.startswith("dagfetch.backends") for d in edges[COMPOSITION_ROOT])


# The layers of docs/architecture.md, from the bottom: a module imports from its own layer or
# below, never above. A module belongs to the first entry naming it or a package above it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dagfetch.errors", "dagfetch.models", "dagfetch.paths", "dagfetch.redact",
     "dagfetch.oslock", "dagfetch._entrypoints", "dagfetch.importing"),
    ("dagfetch.connections", "dagfetch.options", "dagfetch.limits", "dagfetch.protocol",
     "dagfetch.storage"),
    ("dagfetch.manifest", "dagfetch.selection", "dagfetch.registry", "dagfetch.cache",
     "dagfetch.backends"),
    ("dagfetch.sync", "dagfetch.defaults", "dagfetch.diffs", "dagfetch.team"),
    ("dagfetch.workspace", "dagfetch.graphs", "dagfetch.testing"),
    ("dagfetch.cli", "dagfetch.web", "dagfetch.__main__", "dagfetch"),
)


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for number, names in enumerate(LAYERS):
        for name in names:
            matches = module == name or module.startswith(name + ".")
            if matches and (best is None or len(name) > best[0]):
                best = (len(name), number)
    assert best is not None, f"{module} is in no layer of docs/architecture.md"
    return best[1]


def test_layers_call_down_never_up() -> None:
    upward = sorted(
        (name, dep)
        for name, deps in graph().items()
        for dep in deps
        if layer_of(dep) > layer_of(name)
    )
    assert not upward, "imports of a higher layer:\n" + "\n".join(f"{a} -> {b}" for a, b in upward)


# Schemes the core must not decide anything by (rule 3). `file` is allowed: a plain path in the
# manifest is a file:// URL, the one scheme the manifest itself knows.
SCHEMES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https", "git", "ssh",
           "git+https", "git+ssh", "git+file", "zip", "memory", "sftp", "github"}
NO_SCHEME_NAMES = ("dagfetch.registry", "dagfetch.sync", "dagfetch.selection", "dagfetch.cache",
                   "dagfetch.manifest",
                   "dagfetch.protocol", "dagfetch.team")


@pytest.mark.parametrize("core", NO_SCHEME_NAMES)
def test_core_decides_nothing_by_scheme(core: str) -> None:
    found = []
    for name, path in modules().items():
        if name != core and not name.startswith(core + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and node.value.lower().removesuffix("://") in SCHEMES):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found, f"{core} names URL schemes: {found}"
