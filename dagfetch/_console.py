"""The ``dagfetch`` executable: the command group, with Ctrl-C as a shell expects it.

The entry point lives outside :mod:`dagfetch.cli` so that the handling below is in place
while the command line itself (click, the command modules) is still being imported: Ctrl-C
at any moment of a command, start-up included, prints no traceback and exits with 130
(128 + SIGINT), as shells and ``timeout`` expect. ``sync --watch`` ends on Ctrl-C by design
and exits 0.

A finished command ends the process without the interpreter's teardown (:func:`exit_now`).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

EXIT_INTERRUPTED = 130


def run() -> NoReturn:
    """Run the command line on ``sys.argv``."""
    try:
        _run()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        exit_now(EXIT_INTERRUPTED)
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def exit_now(code: object) -> NoReturn:
    """End the process with ``code`` as :func:`sys.exit` would, without the interpreter's
    teardown where nothing else is running.

    The teardown frees the objects of some 300 imported modules one by one: about 30 ms of
    CPU, a sixth of a whole no-change ``dagfetch sync``, spent on memory the kernel frees at
    once. What the teardown does that matters is done here first: the ``atexit`` handlers
    run (logging flushes its handlers; ``weakref.finalize`` stops extraction workers and
    removes temporary folders) and the standard streams are flushed. A non-daemon thread
    still running, or a stream that cannot be flushed (a closed pipe), gets Python's own
    exit, which waits for the thread and reports the stream as it always did.
    """
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # sys.exit("message"): the message on stderr, status 1
        sys.stderr.write(f"{code}\n")
        status = 1
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon and t.is_alive()]
    if others or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)  # a profiler, coverage or a debugger writes its findings at exit
    atexit._run_exitfuncs()  # the handlers run once: the call clears them
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(status)
    os._exit(status)


def _run() -> None:
    import click

    from dagfetch.cli import main

    try:
        # prog_name: also under `python -m dagfetch`, usage lines and the completion variable
        # (_DAGFETCH_COMPLETE) say dagfetch
        code = main.main(prog_name="dagfetch", standalone_mode=False)
    except click.exceptions.Abort:  # what click makes of a Ctrl-C inside a command
        raise KeyboardInterrupt from None
    except click.ClickException as exc:  # bad usage: click's message, its exit code
        exc.show()
        sys.exit(exc.exit_code)
    # --help and --version return their exit code instead of raising
    sys.exit(code if isinstance(code, int) else 0)
