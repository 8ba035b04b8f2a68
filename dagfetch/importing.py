"""Import a version's DAG files so that ``from lib.utils import x`` resolves inside that version.

While a version is being imported its folder is first on ``sys.path`` and every module name
the version defines at its top level (``lib``, ``helpers``, ...) is hidden from
``sys.modules``; afterwards the version's modules are removed again and whatever was there
before is restored. Two versions imported one after the other therefore never share a helper
module. ``sys.modules`` is process-global, so imports are serialized by a lock; for parallel or
untrusted parsing use a subprocess per version (the graph extractor does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import attrs

_LOCK = threading.RLock()


def top_level_names(root: Path) -> set[str]:
    """Module names a folder provides at its top level: ``x.py`` and packages/folders ``x/``."""
    names = set()
    # scandir, not Path.iterdir: the entry's type comes with the listing (no stat per
    # entry), and a worker lists each new version of 1,000 DAG files before its first file
    with os.scandir(root) as entries:
        for entry in entries:
            name = entry.name
            if entry.is_dir() and name.isidentifier():
                names.add(name)
            elif name.endswith(".py") and name[:-3].isidentifier():
                names.add(name[:-3])
    return names


def belongs_to(module: ModuleType, root: str) -> bool:
    """Whether ``module`` was loaded from under ``root`` (a folder path ending in a
    separator)."""
    file = getattr(module, "__file__", None)
    if file and os.path.abspath(file).startswith(root):
        return True
    paths = getattr(module, "__path__", None) or []
    return any(os.path.abspath(p).startswith(root) for p in paths)


def shadowed_names(top_level: Collection[str]) -> tuple[str, ...]:
    """The names in ``sys.modules`` that a version with these top-level module names hides
    while it is imported (``lib`` and ``lib.utils`` for a folder ``lib/``)."""
    return tuple(name for name in list(sys.modules) if name.partition(".")[0] in top_level)


@contextmanager
def version_imports(
    root: str | Path, *, top_level: Collection[str] | None = None, throwaway: bool = False,
    hidden: Collection[str] | None = None, resolved: bool = False,
) -> Iterator[None]:
    """Make ``root`` the place where its own top-level module names are imported from.
    ``top_level``: the version's :func:`top_level_names`, when the caller knows them (a
    version's folder never changes, so a worker lists it once). ``throwaway``: for a process
    that ends right after and never imported from ``root`` before (a forked extraction
    child): no import caches to invalidate, and ``sys.modules`` and ``sys.path`` are left as
    the version left them (both walks touched every loaded module, which in a fork copies
    the memory they sit in). ``hidden``: the names in ``sys.modules`` that ``top_level``
    covers (:func:`shadowed_names`), when the caller knows them: a forked child is given
    them by its worker, since walking ``sys.modules`` in the child would copy the pages of
    every loaded module's entry (4 ms and 1,300 page copies with Airflow loaded).
    ``resolved``: ``root`` is an absolute path without symbolic links already (a worker
    resolves a version's folder once for all its children)."""
    root = Path(root) if resolved else Path(root).resolve()
    prefix = str(root) + os.sep
    # listed once: with thousands of modules loaded (Airflow) a listing per module was the
    # bulk of the extraction time, and it grew with the number of files at the root
    names = top_level_names(root) if top_level is None else top_level
    with _LOCK:
        candidates = shadowed_names(names) if hidden is None else hidden
        shadowed = {name: sys.modules.pop(name) for name in candidates if name in sys.modules}
        sys.path.insert(0, str(root))
        if not throwaway:
            importlib.invalidate_caches()
        try:
            yield
        finally:
            if not throwaway:
                with contextlib.suppress(ValueError):
                    sys.path.remove(str(root))
                for name, mod in list(sys.modules.items()):
                    if belongs_to(mod, prefix):
                        del sys.modules[name]
                sys.modules.update(shadowed)


@attrs.frozen
class ImportedVersion:
    """Modules of the DAG files that imported, and the traceback of each that did not."""

    root: Path
    modules: dict[str, ModuleType]
    errors: dict[str, str]


def dag_files(root: Path) -> list[str]:
    """Files that are DAG definitions rather than helpers: ``*.py`` outside any package (no
    ``__init__.py`` on the way up), not starting with ``_``, and not in hidden folders."""
    found: list[str] = []
    top = os.fspath(root)
    # strings, not Path objects: a version of 1,000 DAG files is walked on every extraction,
    # and a Path and relative_to per file cost more than the walk
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith((".", "_"))
            and not os.path.exists(os.path.join(dirpath, d, "__init__.py"))
        )
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == os.curdir else rel_dir.replace(os.sep, "/") + "/"
        found.extend(prefix + name for name in sorted(filenames)
                     if name.endswith(".py") and not name.startswith("_"))
    return found


def module_name_for(root: Path, relpath: str) -> str:
    tag = "".join(c if c.isalnum() else "_" for c in root.name)
    stem = "".join(c if c.isalnum() else "_" for c in relpath.removesuffix(".py"))
    return f"_dagfetch_{tag}_{stem}"


def import_version(
    root: str | Path, files: list[str] | None = None, *, top_level: Collection[str] | None = None,
    throwaway: bool = False,
) -> ImportedVersion:
    """Execute the DAG files of a version folder; import errors are collected, not raised.
    ``top_level`` and ``throwaway``: as for :func:`version_imports`."""
    root = Path(root).resolve()
    files = dag_files(root) if files is None else files
    modules: dict[str, ModuleType] = {}
    errors: dict[str, str] = {}
    with version_imports(root, top_level=top_level, throwaway=throwaway):
        for rel in files:
            outcome = import_file(root, rel)
            if isinstance(outcome, str):
                errors[rel] = outcome
            else:
                modules[rel] = outcome
    return ImportedVersion(root, modules, errors)


def import_file(root: Path, rel: str) -> ModuleType | str:
    """Execute one DAG file of ``root`` (resolved, inside :func:`version_imports`) under a
    module name of its own (:func:`module_name_for`): its module, or its import error."""
    name = module_name_for(root, rel)
    spec = importlib.util.spec_from_file_location(name, root / rel)
    if spec is None or spec.loader is None:
        return "not importable as a Python file"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return "".join(traceback.format_exception(exc))
    finally:
        sys.modules.pop(name, None)
    return module

