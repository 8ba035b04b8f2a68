"""dagfetch-zip: a dagfetch backend serving ``zip+<url>`` repositories.

One zip archive holds DAG files with all their helper modules (``lib/utils.py``, ...). The
plugin registers itself through the ``dagfetch.fetchers`` entry point ``zip``; dagfetch's
registry sends every ``zip+<inner>://`` URL here, and the archive is read from the inner URL
through fsspec. Members are listed from the central directory and extracted one by one,
refusing zip slip, symlinks out of the tree and zip bombs.
"""

from dagfetch_zip.errors import ArchiveError, ArchiveLimitError
from dagfetch_zip.fetcher import ZipFetcher
from dagfetch_zip.limits import Limits, ZipOptions

__version__ = "0.2.0.dev0"

__all__ = [
    "ArchiveError",
    "ArchiveLimitError",
    "Limits",
    "ZipFetcher",
    "ZipOptions",
    "__version__",
]
