"""The seed's "zip all dependencies with each dag": helpers travel in the archive and
``from lib.utils import x`` resolves inside the synced version."""

from __future__ import annotations

from pathlib import Path

from zip_helpers import workspace, write_atomic, zip_bytes

DAG = b"from lib.utils import greeting\n\nVALUE = greeting()\n"


def bundle(greeting: str) -> bytes:
    return zip_bytes({
        "my_dag.py": DAG,
        "lib/__init__.py": b"",
        "lib/utils.py": f"def greeting():\n    return {greeting!r}\n".encode(),
    })


def test_helpers_import_from_the_synced_archive(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    write_atomic(archive, bundle("hello from v1"))
    ws = workspace(tmp_path, f"zip+file://{archive}")
    first = ws.sync_one("z")
    imported = ws.import_dags("z")
    assert imported.errors == {}
    assert set(imported.modules) == {"my_dag.py"}
    assert imported.modules["my_dag.py"].VALUE == "hello from v1"

    # a new archive with a changed helper: only the helper is extracted, and each version
    # imports its own helper
    write_atomic(archive, bundle("hello from v2"))
    second = ws.sync_one("z")
    assert second.downloaded == 1
    assert ws.import_dags("z").modules["my_dag.py"].VALUE == "hello from v2"
    assert first.version_id is not None
    old = ws.import_dags("z", first.version_id)
    assert old.modules["my_dag.py"].VALUE == "hello from v1"
