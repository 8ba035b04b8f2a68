"""Which files of a listing a version holds, and which listings are refused before a byte
is downloaded: the include/exclude globs, paths that would escape the version folder, file and
folder clashes, symlink chains that leave the tree, case and normalization twins, and the
repository's ``limits``."""

from __future__ import annotations

import fnmatch

import attrs

from dagfetch.errors import UnsafePathError
from dagfetch.limits import check_listing
from dagfetch.manifest import RepositorySpec
from dagfetch.models import Listing, RemoteFile
from dagfetch.paths import check_no_twins, safe_relpath


def select_files(listing: Listing, spec: RepositorySpec) -> list[RemoteFile]:
    """Apply include/exclude globs (matched against the whole relative path; ``*`` crosses
    folders) and refuse paths that would escape the version directory, names that differ
    only by case or normalization (unless ``limits.name_twins = 'allow'``), and a listing
    past the repository's limits (before a byte is downloaded)."""
    chosen: dict[str, RemoteFile] = {}
    for f in listing.files:
        path = safe_relpath(f.path)
        if spec.include and not any(fnmatch.fnmatchcase(path, g) for g in spec.include):
            continue
        if any(fnmatch.fnmatchcase(path, g) for g in spec.exclude):
            continue
        if path in chosen:
            raise UnsafePathError(f.path, f"names the same file as {chosen[path].path!r}")
        chosen[path] = attrs.evolve(f, path=path) if path != f.path else f
    _check_no_file_dir_clash(chosen)
    _check_link_chains(chosen)
    if spec.limits.name_twins == "refuse":
        check_no_twins(chosen)
    selected = [chosen[p] for p in sorted(chosen)]
    check_listing(((f.path, f.size) for f in selected), spec.limits, repo_field=spec.field)
    return selected


def _check_link_chains(files: dict[str, RemoteFile]) -> None:
    """Refuse a symlink whose target goes *through* another symlink of the tree: each link's
    text may stay inside (``s -> ..``, ``l -> s/../..``) while the chain leaves it."""
    links = {p for p, f in files.items() if f.kind == "symlink"}
    for path in links:
        where = path.split("/")[:-1]
        steps = [c for c in (files[path].target or "").split("/") if c not in ("", ".")]
        for i, step in enumerate(steps):
            if step == "..":
                if not where:
                    raise UnsafePathError(path, "symlink points outside the repository")
                where.pop()
                continue
            where.append(step)
            if i < len(steps) - 1 and "/".join(where) in links:
                raise UnsafePathError(
                    path, f"symlink goes through another symlink ({'/'.join(where)!r})"
                )


def _check_no_file_dir_clash(files: dict[str, RemoteFile]) -> None:
    folders: set[str] = set()  # checked already: not a file
    for path in files:
        parents = []
        cut = path.rfind("/")
        while cut > 0 and path[:cut] not in folders:
            parents.append(path[:cut])
            cut = path.rfind("/", 0, cut)
        for parent in reversed(parents):  # the outermost clash is the one named
            if parent in files:
                raise UnsafePathError(path, f"{parent!r} is both a file and a folder")
            folders.add(parent)
