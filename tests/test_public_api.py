from __future__ import annotations

import dagfetch


def test_every_exported_name_exists_and_every_public_class_is_exported() -> None:
    for name in dagfetch.__all__:
        assert hasattr(dagfetch, name), name
    assert len(set(dagfetch.__all__)) == len(dagfetch.__all__)
    public = {n for n in dir(dagfetch) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(dagfetch.__all__), public - set(dagfetch.__all__)
