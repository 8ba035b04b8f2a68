"""The ``dagfetch`` executable: the command group, with Ctrl-C as a shell expects it.

The entry point lives outside :mod:`dagfetch.cli` so that the handling below is in place
while the command line itself (click, the command modules) is still being imported: Ctrl-C
at any moment of a command, start-up included, prints no traceback and exits with 130
(128 + SIGINT), as shells and ``timeout`` expect. ``sync --watch`` ends on Ctrl-C by design
and exits 0.

Start-up runs with a higher threshold for the garbage collector (:data:`START_UP_GC_THRESHOLD`),
what it allocated is frozen out of the collector's sight once the command's workspace is built
(:data:`dagfetch.cli.app.FREEZE_START_UP`), and a finished command ends the process without
the interpreter's teardown (:func:`exit_now`): together a quarter of a no-change
``dagfetch sync``.
"""

from __future__ import annotations

import sys

# Only sys at import: a Ctrl-C while this module is imported, before run() is in place,
# would print a traceback (typing alone takes milliseconds to import). The type checker
# reads the names below; the running program never imports them here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

EXIT_INTERRUPTED = 130


#: the collector's first threshold for the command line (Python's default: 700)
START_UP_GC_THRESHOLD = 50_000


def run() -> NoReturn:
    """Run the command line on ``sys.argv``."""
    # Importing click, fsspec, attrs and dagfetch allocates a few hundred thousand objects
    # that live as long as the process: at the default threshold the collector runs some 65
    # times on the way and walks them, about 10 ms of a no-change sync. With this threshold
    # start-up passes without a collection; a long-running command (`sync --watch`, `serve`)
    # still collects, every 50,000 new objects instead of every 700.
    try:
        import gc

        gc.set_threshold(START_UP_GC_THRESHOLD, *gc.get_threshold()[1:])
        _run()
    except KeyboardInterrupt:
        _interrupted()
    except RuntimeError as exc:
        # Python 3.11 wraps what a class body's __set_name__ raises, a Ctrl-C included, in
        # a RuntimeError: a Ctrl-C while a module defines such a class is still a Ctrl-C
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted()
        raise
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


def _interrupted() -> NoReturn:
    sys.stderr.write("\n")
    exit_now(EXIT_INTERRUPTED)


def exit_now(code: object) -> NoReturn:
    """End the process with ``code`` as :func:`sys.exit` would, without the interpreter's
    teardown where nothing else is running.

    The teardown frees the objects of some 300 imported modules one by one: about 30 ms of
    CPU, a sixth of a whole no-change ``dagfetch sync``, spent on memory the kernel frees at
    once. What the teardown does that matters is done here first: the ``atexit`` handlers
    run (logging flushes its handlers; ``weakref.finalize`` stops extraction workers and
    removes temporary folders) and the standard streams are flushed. A non-daemon thread
    still running, a profiler or tracer (``python -m cProfile``, coverage, a debugger), or a
    stream that cannot be flushed (a closed pipe) gets Python's own exit, which waits for
    the thread, lets the tool write what it found and reports the stream as it always did.
    """
    import atexit
    import os
    import threading  # loaded by then (click uses it)

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

    from dagfetch.cli import app, main

    app.FREEZE_START_UP = True  # this process is the executable's own
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
