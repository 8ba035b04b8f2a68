"""Whole processes and client CPU time: the ``dagfetch`` command as users run it, and the
CPU a variant spends on the client side (in this process and in the processes it waits for),
which a slow test server does not inflate the way it inflates wall time."""

from __future__ import annotations

import compileall
import json
import os
import pkgutil
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DAGFETCH = Path(sys.executable).with_name("dagfetch")


def byte_compile() -> list[str]:
    """Byte-compile dagfetch and every installed ``dagfetch_*`` plugin package, as pip does
    when it installs a wheel; the names of the packages compiled. Run once, before any
    scenario: in an editable checkout run with ``PYTHONDONTWRITEBYTECODE`` every ``dagfetch``
    process would otherwise compile every module it imports, which is no user's start-up
    (and made the CLI rows of the scenarios run before the start-up one look ~250 ms slow)."""
    import dagfetch

    folders = {"dagfetch": Path(dagfetch.__file__).parent}
    for found in pkgutil.iter_modules():
        if found.ispkg and found.name.startswith("dagfetch_"):
            folders[found.name] = Path(getattr(found.module_finder, "path", "")) / found.name
    for folder in folders.values():
        compileall.compile_dir(folder, quiet=1)
    return sorted(folders)


def client_cpu() -> float:
    """CPU seconds of this process plus the children it has waited for."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far: a test server's, to
    show how much of a run's wall time the server's own work on the same cores takes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_recorded(
    fn: Callable[[], Any], into: list[float], server: tuple[int, list[float]] | None = None
) -> Callable[[], None]:
    """``fn``, appending the client CPU time of each call to ``into`` and, with
    ``server=(pid, list)``, that process's CPU time during the call to the list."""

    def run() -> None:
        before = process_cpu(server[0]) if server else 0.0
        start = client_cpu()
        fn()
        into.append(client_cpu() - start)
        if server:
            server[1].append(process_cpu(server[0]) - before)

    return run


def write_manifest(path: Path, repositories: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"dag_repositories": repositories}))
    return path


def dagfetch_cli(manifest: Path, home: Callable[[], Path], *args: str) -> Callable[[], None]:
    """A function running ``dagfetch --manifest M --home H <args>`` as a new process."""

    def run() -> None:
        subprocess.run(
            [str(DAGFETCH), "--manifest", str(manifest), "--home", str(home()), *args],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return run
