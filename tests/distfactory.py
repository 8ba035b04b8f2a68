"""Install throwaway distributions (a real ``.dist-info`` with entry points) on sys.path, so
registry tests go through importlib-metadata exactly as an installed plugin would."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def installed(
    site: Path,
    name: str,
    version: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
    requires: Sequence[str] = (),
) -> Iterator[Path]:
    """``requires`` are ``Requires-Dist`` lines (``pkg>=1; extra == "cloud"``)."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {line}" for line in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{k} = {v}" for k, v in eps.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(source)
    added = str(site) not in sys.path
    if added:
        sys.path.insert(0, str(site))
    try:
        yield site
    finally:
        if added:
            sys.path.remove(str(site))
        for module in modules or {}:
            sys.modules.pop(module, None)
