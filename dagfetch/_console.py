"""The ``dagfetch`` executable: the command group, with Ctrl-C as a shell expects it.

The entry point lives outside :mod:`dagfetch.cli` so that the handling below is in place
while the command line itself (click, the command modules) is still being imported: Ctrl-C
at any moment of a command, start-up included, prints no traceback and exits with 130
(128 + SIGINT), as shells and ``timeout`` expect. ``sync --watch`` ends on Ctrl-C by design
and exits 0.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def run() -> None:
    """Run the command line on ``sys.argv``."""
    try:
        _run()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        sys.exit(EXIT_INTERRUPTED)


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
