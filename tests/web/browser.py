"""A real browser for the page tests: Debian's ``chromium``, installed once when it is absent
(as root; otherwise the tests are skipped with the reason), driven by Playwright through
``executable_path``: no browser is ever downloaded.

And the real server for it to open: ``dagfetch serve`` in a subprocess on a free 127.0.0.1
port, over a synced and extracted workspace.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.servers.procs import ServerProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
#: Several test processes (xdist workers) may want the browser at once: one installs it.
INSTALL_LOCK = Path(tempfile.gettempdir()) / "dagfetch-tests-chromium.lock"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


def ensure_chromium() -> str | None:
    """Install Debian's chromium unless it is there; None when it is ready, else why not."""
    if CHROMIUM.exists():
        return None
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and the tests do not run as root to apt-get it"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "-q"]
        for argv in ([*apt, "update"], [*apt, "install", "-y", "--no-install-recommends",
                                        "chromium"]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                                  timeout=900)
            if done.returncode != 0:
                return f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}"
    return None if CHROMIUM.exists() else f"chromium was installed but {CHROMIUM} is missing"


class LiveServer:
    """``dagfetch serve`` running in its own process."""

    def __init__(self, manifest: Path, home: Path, log: Path,
                 extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "dagfetch", "--manifest", str(manifest), "--home",
                str(home), "serve", "--port", str(self.port), "--log-level", "warning",
                *extra]
        self.process = ServerProcess(argv, self.port, log)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def live_server(manifest: Path, home: Path, log: Path,
                extra: Sequence[str] = ()) -> Iterator[LiveServer]:
    server = LiveServer(manifest, home, log, extra)
    server.process.start()
    try:
        yield server
    finally:
        server.process.stop()


if __name__ == "__main__":  # install ahead of a run: python -m tests.web.browser
    problem = ensure_chromium()
    print(problem or f"{CHROMIUM} is ready")
    sys.exit(1 if problem else 0)
