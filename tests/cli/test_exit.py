"""The executable ends without the interpreter's teardown, and still as sys.exit would: the
atexit handlers run, the streams are flushed, a running thread is waited for, the exit code
is the command's. Its start-up runs without a collection, and what start-up allocated is
frozen out of the collector's sight once the command's workspace is built."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import atexit, sys, threading, time
from pathlib import Path
marker = Path(sys.argv[1])
"""


def _run(tmp_path: Path, body: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    marker = tmp_path / "marker"
    script = PRELUDE + textwrap.dedent(body) + (
        f"\nsys.argv = ['dagfetch', *{list(argv)!r}]\n"
        "from dagfetch._console import run\nrun()\n")
    done = subprocess.run([sys.executable, "-c", script, str(marker)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    return done, marker


def test_atexit_handlers_run_and_buffered_output_is_flushed(tmp_path: Path) -> None:
    done, marker = _run(tmp_path, """
        atexit.register(lambda: marker.write_text("atexit ran"))
        sys.stdout.write("buffered, never flushed by the script")
    """, "--version")
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "atexit ran"
    assert done.stdout.startswith("buffered, never flushed by the script")
    assert "dagfetch, version" in done.stdout


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    done, marker = _run(tmp_path, """
        def late() -> None:
            time.sleep(0.5)
            marker.write_text("thread finished")
        threading.Thread(target=late).start()
    """, "--version")
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "thread finished"


def test_the_commands_exit_code_and_message_survive(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "", "--manifest", str(tmp_path / "missing.toml"), "status")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "missing.toml" in done.stderr
    done, _ = _run(tmp_path, "", "no-such-command")
    assert done.returncode == 2 and "No such command" in done.stderr


def test_a_profiler_still_writes_its_findings(tmp_path: Path) -> None:
    """`python -m cProfile -m dagfetch`: the profile is written when the process exits, so a
    process under a profiler or tracer exits as Python would."""
    out = tmp_path / "profile.out"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "dagfetch",
                           "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


def test_start_up_runs_without_a_collection(tmp_path: Path) -> None:
    """Importing the command line allocates objects that live as long as the process: the
    collector's first threshold is raised so start-up does not walk them again and again."""
    done, marker = _run(tmp_path, """
        import gc
        collections = []
        # counted from the moment run() raises the threshold, before it imports click
        gc.callbacks.append(lambda phase, info: phase == "stop"
                            and gc.get_threshold()[0] != 700 and collections.append(info))
        atexit.register(lambda: marker.write_text(f"{len(collections)} {gc.get_threshold()[0]}"))
    """, "--help")
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "0 50000"


def test_a_no_change_sync_of_thousands_of_files_walks_no_start_up_object(
    tmp_path: Path,
) -> None:
    """Once the workspace is built, the executable freezes what start-up allocated: reading
    the record of a version of 2,000 files went past the raised threshold, and that one
    collection walked every object of start-up (10 ms of a 100 ms process)."""
    source = tmp_path / "source"
    for i in range(2000):
        path = source / "dags" / f"d{i // 100:02d}" / f"f{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"x = {i}\n")
    manifest = tmp_path / "dagfetch.json"
    manifest.write_text(json.dumps({"dag_repositories": {"r": {"url": source.as_uri()}}}))
    argv = ("--manifest", str(manifest), "--home", str(tmp_path / "home"), "sync")
    first, _ = _run(tmp_path, "", *argv)  # fetches the 2,000 files
    assert first.returncode == 0, first.stderr
    done, marker = _run(tmp_path, """
        import gc
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "stop"
                            and gc.get_threshold()[0] != 700 and collections.append(info))
        atexit.register(lambda: marker.write_text(
            f"{len(collections)} {gc.get_freeze_count() > 0} {gc.get_count()}"))
    """, *argv)
    assert done.returncode == 0, done.stderr
    assert "unchanged" in done.stdout
    collected, frozen, _counts = marker.read_text().split(" ", 2)
    assert (collected, frozen) == ("0", "True"), marker.read_text()


def test_a_caller_of_the_command_group_keeps_its_collector(tmp_path: Path) -> None:
    """Only the executable freezes: a process that runs the command group itself (a test's
    CliRunner, a script) keeps every object it has in the collector's sight."""
    from click.testing import CliRunner

    from dagfetch.cli import main

    manifest = tmp_path / "dagfetch.json"
    manifest.write_text(json.dumps({"dag_repositories": {"r": {"url": tmp_path.as_uri()}}}))
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["--manifest", str(manifest), "--home",
                                       str(tmp_path / "home"), "status"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen
