"""Version trees on disk: built from objects, made read-only, moved into place, removed.

A version tree is read-only for everyone (files ``0444``, as the object store keeps them;
folders ``0555``), so no process can change a version another one is reading. It is built in a
private scratch folder and appears under its final name by one ``rename``.

Whether a version's tree is there is decided by its *completion marker*
(``<repo>/.meta/trees/<version_id>``), never by the folder existing: the marker is written
after the rename that brings a whole tree in, and removed before the tree goes. A tree is
removed by renaming it into a trash folder first (:func:`retire_tree`), so a process killed
while deleting leaves a partial tree in the trash, never under the version's name.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dagfetch.cache.objects import NO_LINK, ObjectStore
from dagfetch.errors import CacheError
from dagfetch.models import CachedFile
from dagfetch.paths import parent_folders
from dagfetch.redact import get_logger

log = get_logger(__name__)

READ_ONLY_FOLDER = 0o555


def build_tree(
    objects: ObjectStore, tree: str, files: Iterable[CachedFile], *,
    present: Collection[str] = (),
) -> None:
    """Create ``tree`` holding ``files``: hard links to their objects (copies where the file
    system refuses links) and symlinks. Every object must be in the store already. Files
    whose path is in ``present`` are in the tree already (downloads, written in place)."""
    # the hot loop of every sync (one pass per file of the version): plain strings, no
    # os.path.join, one mkdir per folder and one system call per file keep it close to
    # `cp -al`
    os.makedirs(tree, exist_ok=True)
    made = {tree}
    store = str(objects.layout.objects)
    link = os.link
    for f in files:
        path = f.path
        if path in present:
            continue
        dest = f"{tree}/{path}"
        parent = dest[: dest.rfind("/")]
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        sha = f.sha256
        try:
            if f.kind == "symlink":
                os.symlink(f.target or "", dest)
            else:
                link(f"{store}/{sha[:2]}/{sha[2:]}", dest)
        except OSError as exc:
            _place_slowly(objects, f, dest, exc)


def _place_slowly(objects: ObjectStore, f: CachedFile, dest: str, exc: OSError) -> None:
    """What a failed link or symlink in :func:`build_tree` becomes: a copy where the file
    system refuses links, a clear error for an object that vanished, and a stray entry a
    fetcher left where the tree needs this file removed first."""
    if isinstance(exc, FileExistsError):
        log.debug("removing %s, which the fetcher wrote and the version does not hold", dest)
        _remove_entry(dest)
    elif not isinstance(exc, FileNotFoundError) and exc.errno not in NO_LINK:
        raise exc
    if f.kind == "symlink":
        os.symlink(f.target or "", dest)
        return
    try:
        objects.link_into(f.sha256, dest)
    except FileNotFoundError:
        raise CacheError(f"{f.path}: object {f.sha256} vanished from the cache") from None


def _remove_entry(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        remove_tree(Path(path))
    else:
        os.unlink(path)


def make_read_only(tree: Path, files: Iterable[CachedFile] | None = None) -> None:
    """Make every folder below ``tree`` read-only (``tree`` itself stays writable until
    :func:`move_into_place`: a folder moved to another parent must be writable). Given the
    version's ``files``, first remove whatever else is there (a tree built where a fetcher
    wrote its downloads holds only what the listing named, nothing the fetcher left)."""
    folders: list[str] = []
    entries, empty = _walk(str(tree), folders)
    if files is not None:
        wanted = files if isinstance(files, Collection) else list(files)
        if entries != len(wanted) or empty:
            _remove_strays(str(tree), wanted)
            folders.clear()
            _walk(str(tree), folders)
    for folder in folders:
        os.chmod(folder, READ_ONLY_FOLDER)


def _walk(top: str, folders: list[str]) -> tuple[int, bool]:
    """Collect the folders below ``top`` (symlinks not followed); the number of entries
    that are not folders, and whether a folder below ``top`` is empty."""
    count = 0
    empty = False
    pending = [top]
    while pending:
        folder = pending.pop()
        seen = False
        with os.scandir(folder) as it:
            for entry in it:
                seen = True
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                    pending.append(entry.path)
                else:
                    count += 1
        empty = empty or (not seen and folder != top)
    return count, empty


def _remove_strays(tree: str, files: Iterable[CachedFile]) -> None:
    """Remove every entry below ``tree`` that is not one of ``files`` nor a folder holding
    one (the fetcher's leftovers: scratch files, empty folders)."""
    keep = {f.path for f in files}
    folders = parent_folders(keep)
    for dirpath, dirnames, filenames in os.walk(tree, topdown=True):
        rel = os.path.relpath(dirpath, tree)
        prefix = "" if rel == "." else f"{rel.replace(os.sep, '/')}/"
        for name in list(dirnames):
            path = f"{prefix}{name}"
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                dirnames.remove(name)
                if path not in keep:
                    os.unlink(full)
            elif path not in folders:
                dirnames.remove(name)
                log.debug("removing %s, which the fetcher left in the tree", full)
                remove_tree(Path(full))
        for name in filenames:
            if f"{prefix}{name}" not in keep:
                log.debug("removing %s, which the fetcher left in the tree", name)
                os.unlink(os.path.join(dirpath, name))


def move_into_place(tree: Path, final: Path) -> None:
    """Rename a built tree to its final name in one step (readers see all of it or nothing),
    then make its top folder read-only too. Fails if ``final`` exists and is not empty."""
    os.replace(tree, final)
    os.chmod(final, READ_ONLY_FOLDER)


def mark_complete(marker: Path) -> None:
    """Record that the tree the marker names is whole (after the rename that brought it in)."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def is_complete(marker: Path, tree: str | Path) -> bool:
    return os.path.exists(marker) and os.path.isdir(tree)


def retire_tree(tree: Path, marker: Path | None, trash: Path) -> None:
    """Remove a version tree so that no one ever sees half of it under its name: drop its
    marker, rename it into ``trash`` (same file system), then delete it there. A process
    killed on the way leaves the tree whole (and unmarked, so rebuilt or adopted on use) or
    in the trash, which the next sync or gc of the repository empties."""
    if marker is not None:
        marker.unlink(missing_ok=True)
    if tree.is_symlink() or not tree.is_dir():
        remove_tree(tree)
        return
    trash.mkdir(parents=True, exist_ok=True)
    away = trash / uuid.uuid4().hex
    try:
        os.chmod(tree, 0o755)  # noqa: S103 - a folder moved to another parent must be writable
        os.rename(tree, away)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        remove_tree(tree)  # the trash is elsewhere: delete in place, the marker is gone already
        return
    remove_tree(away)


def remove_tree(path: Path) -> None:
    """Remove a (possibly read-only) tree, or a symlink, if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path)


def _make_writable(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)  # noqa: S103 - our own tree, made writable to delete it
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                os.chmod(full, 0o755)  # noqa: S103 - as above


def remove_leftovers(parent: Path) -> list[str]:
    """Remove every folder under ``parent`` (what interrupted work left); their names."""
    if not parent.exists():
        return []
    names = []
    for leftover in parent.iterdir():
        remove_tree(leftover)
        names.append(leftover.name)
    return names


@contextmanager
def scratch_folder(parent: Path) -> Iterator[Path]:
    """A fresh, empty folder under ``parent``, removed at the end whatever happened (a
    process killed inside leaves it: :func:`remove_leftovers` is for that)."""
    folder = parent / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        remove_tree(folder)
