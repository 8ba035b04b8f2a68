"""The command line's logging: which records reach standard error, and masked on the way.

==============  ===========================================================================
(default)       warnings and errors, dagfetch's and every library's
``-q``          errors only
``-v``          dagfetch's own debug lines; other libraries still warnings only
``-vv``         every library at debug (botocore, urllib3, fsspec, ...)
``--log-level`` dagfetch's level by name (``DEBUG``, ``INFO``, ...; ``$DAGFETCH_LOG_LEVEL``),
                instead of what ``-v``/``-q`` set for it
==============  ===========================================================================

The masking lives on dagfetch's *handler*, not only on dagfetch's loggers: a filter on a
logger sees only that logger's own records, while one on the handler sees every record that
is printed, whichever library logged it (botocore's canonical request quotes the session
token; urllib3 and fsspec quote URLs). A record the command reports itself (a repository
whose sync failed is a ``FAILED`` line of the result) is not printed twice, unless ``-v``.
"""

from __future__ import annotations

import logging
import sys

from dagfetch.redact import REPORTED, RedactingFilter

_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _NotReportedByTheCommand(logging.Filter):
    """Drops records marked ``extra={REPORTED: True}``: what the command prints anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, REPORTED, False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """dagfetch's handler on the root logger (marked, so configuring twice replaces it)."""


def configure(verbose: int = 0, quiet: bool = False, level: str | None = None) -> None:
    """Set up logging for one command (see the module's table)."""
    own = logging.WARNING
    others = logging.WARNING
    if quiet:
        own = others = logging.ERROR
    if verbose >= 1:
        own = logging.DEBUG
    if verbose >= 2:
        others = logging.DEBUG
    if level is not None:
        own = getattr(logging, level.upper())
    handler = _Handler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    if verbose == 0:
        handler.addFilter(_NotReportedByTheCommand())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # libraries log at `others` (with -v, botocore makes no debug record at all); dagfetch
    # at `own`: its records reach the root's handler whatever the root's level
    root.setLevel(others)
    logging.getLogger("dagfetch").setLevel(own)
    handler.setLevel(min(own, others))
    handler.addFilter(_LevelByOrigin(own, others))  # a library that set its own level


class _LevelByOrigin(logging.Filter):
    """dagfetch's records pass at ``own``, every other library's at ``others``: with ``-v``
    the root logger lets debug records through, and this keeps botocore's out."""

    def __init__(self, own: int, others: int) -> None:
        super().__init__()
        self.own = own
        self.others = others

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "dagfetch" or record.name.startswith("dagfetch.")
        return record.levelno >= (self.own if ours else self.others)
