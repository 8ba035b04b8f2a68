"""The OS file lock behind the cache's and the git store's locks."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dagfetch.oslock import LockTimeout, exclusive_lock


def test_a_held_lock_excludes_another_holder_in_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    outcome: list[str] = []

    def second() -> None:
        try:
            with exclusive_lock(path, timeout=0.2):
                outcome.append("acquired")
        except LockTimeout as exc:
            outcome.append(str(exc))

    with exclusive_lock(path, timeout=1):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert outcome == [f"timed out waiting for the lock {path}"]
    with exclusive_lock(path, timeout=0):  # released on leaving the block
        pass


def test_the_kernel_releases_the_lock_of_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom dagfetch.oslock import exclusive_lock\n"
         f"with exclusive_lock({str(path)!r}, 5):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockTimeout), exclusive_lock(path, timeout=0.1):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive_lock(path, timeout=5):
        pass
