"""DAG files import helpers from their own version, and versions never share modules."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from dagfetch.importing import dag_files, import_version, shadowed_names, version_imports


def make_version(root: Path, team: str) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "__init__.py").write_text("")
    (root / "lib" / "utils.py").write_text(f"TEAM = {team!r}\n")
    (root / "etl.py").write_text("from lib.utils import TEAM\nresult = TEAM\n")
    (root / "broken.py").write_text("import does_not_exist\n")
    (root / "_private.py").write_text("raise SystemExit('never imported')\n")
    return root


def test_helpers_resolve_inside_each_version(tmp_path: Path) -> None:
    v1 = import_version(make_version(tmp_path / "v1", "one"))
    v2 = import_version(make_version(tmp_path / "v2", "two"))
    assert v1.modules["etl.py"].result == "one"
    assert v2.modules["etl.py"].result == "two"
    assert "lib" not in sys.modules and "lib.utils" not in sys.modules


def test_import_errors_are_collected_not_raised(tmp_path: Path) -> None:
    imported = import_version(make_version(tmp_path / "v", "x"))
    assert set(imported.errors) == {"broken.py"}
    assert "ModuleNotFoundError" in imported.errors["broken.py"]
    assert "etl.py" in imported.modules


def test_a_module_of_the_same_name_outside_is_hidden_then_restored(tmp_path: Path) -> None:
    outside = types.ModuleType("lib")
    sys.modules["lib"] = outside
    try:
        imported = import_version(make_version(tmp_path / "v", "inside"))
        assert imported.modules["etl.py"].result == "inside"
        assert sys.modules["lib"] is outside
    finally:
        del sys.modules["lib"]


def test_path_is_restored(tmp_path: Path) -> None:
    before = list(sys.path)
    with version_imports(make_version(tmp_path / "v", "x")):
        assert sys.path[0] == str((tmp_path / "v").resolve())
    assert sys.path == before


def test_dag_files_skip_packages_and_private_files(tmp_path: Path) -> None:
    root = make_version(tmp_path / "v", "x")
    (root / "sub").mkdir()
    (root / "sub" / "nested.py").write_text("")
    assert dag_files(root) == ["broken.py", "etl.py", "sub/nested.py"]


def test_a_version_folder_is_listed_once_however_many_modules_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagfetch.importing as importing

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "etl.py").write_text("import lib\n")
    listings = []
    real = importing.top_level_names
    monkeypatch.setattr(importing, "top_level_names",
                        lambda root: listings.append(root) or real(root))
    assert len(sys.modules) > 100  # the quadratic cost grew with these
    imported = importing.import_version(tmp_path)
    assert imported.errors == {}
    assert len(listings) == 1


def test_the_modules_a_version_hides_may_be_listed_by_the_caller(tmp_path: Path) -> None:
    # as an extraction worker does once for the children it forks (no walk of sys.modules)
    outside, utils = types.ModuleType("lib"), types.ModuleType("lib.utils")
    sys.modules.update({"lib": outside, "lib.utils": utils, "library": outside})
    try:
        root = make_version(tmp_path / "v", "inside")
        hidden = shadowed_names({"lib", "etl"})
        assert sorted(hidden) == ["lib", "lib.utils"]  # not "library"
        with version_imports(root.resolve(), top_level={"lib", "etl"}, hidden=hidden,
                             resolved=True):
            assert "lib" not in sys.modules and "lib.utils" not in sys.modules
            assert sys.modules["library"] is outside
        assert sys.modules["lib"] is outside and sys.modules["lib.utils"] is utils
    finally:
        for name in ("lib", "lib.utils", "library"):
            sys.modules.pop(name, None)
