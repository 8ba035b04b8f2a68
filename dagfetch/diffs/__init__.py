"""What changed in the code between two cached versions of one repository.

    diff = workspace.diff("etl", "a1b2c3", "current")
    diff.added, diff.deleted, diff.modified, diff.renamed    # FileDiff values, by path
    print(diff.patch_text())                                 # what `git diff` prints
    print(diff.stat_text())                                  # what `git diff --stat` prints

Which files were added, deleted, modified or renamed comes from the two versions' records
alone (each file's sha256 was recorded when the version was published): nothing is hashed
again, and it works for evicted versions too, whose records are kept. The words and the JSON
shape are DVC's (``dvc diff``: added, deleted, modified, renamed); a rename is a deleted and
an added path with the same content, as DVC and ``git diff -M`` at 100% similarity see it.

The line-by-line diff of text files (``patch=True``) reads both versions' trees, or for a
stored version (whose tree gc removed) its contents in the cache's content store; nothing is
written. An evicted version's content is gone, and its files say so in ``skipped``.
Limits keep a page or a terminal usable: a file over
``max_file_bytes`` on either side, or past ``max_total_bytes`` read for the whole diff, gets
no hunks and a reason. A file is binary, as git decides, when its first 8,000 bytes hold a NUL
byte; dagfetch also treats bytes that are not UTF-8 as binary, since it shows text as text.
"""

from dagfetch.diffs.compare import (
    MIN_PREFIX,
    ContentSource,
    changed_files,
    compare_versions,
    resolve_version_id,
)
from dagfetch.diffs.lines import BINARY_PROBE, is_binary, line_hunks, split_lines
from dagfetch.diffs.model import DiffLimits, DiffLine, FileDiff, Hunk, VersionDiff

__all__ = [
    "BINARY_PROBE",
    "MIN_PREFIX",
    "ContentSource",
    "DiffLimits",
    "DiffLine",
    "FileDiff",
    "Hunk",
    "VersionDiff",
    "changed_files",
    "compare_versions",
    "is_binary",
    "line_hunks",
    "resolve_version_id",
    "split_lines",
]
