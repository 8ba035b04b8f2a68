"""What fault classes share: a scratch remote that moves through known states, the ``dagfetch``
command run in a child process (to be killed), and the invariants checked after each attempt.

A class builds a :class:`Scene` in its scratch folder, lets the fault happen, then returns
``scene.outcome()``: every invariant of :mod:`benchmarks.faults` is checked there, so each class
only says what it does to dagfetch, never how survival is judged.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from benchmarks.faults import Outcome
from dagfetch.cache import VersionCache
from dagfetch.errors import DagfetchError
from dagfetch.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[2]

Snapshot = dict[str, bytes]  # relative path -> bytes (a symlink: b"-> " + its target)


def snapshot(folder: Path) -> Snapshot:
    """Every file and symlink under ``folder``, by relative path."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, folder)
            if os.path.islink(full):
                out[rel] = b"-> " + os.readlink(full).encode()
            else:
                with open(full, "rb") as fh:
                    out[rel] = fh.read()
    return out


def write_state(folder: Path, files: Mapping[str, bytes]) -> None:
    """Make ``folder`` hold exactly ``files`` (in place, as a user editing it would)."""
    for rel in set(snapshot(folder)) - set(files) if folder.exists() else ():
        (folder / rel).unlink()
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)


def seeded(number: int) -> random.Random:
    """The random numbers of one attempt: the same for the same number, to re-run it."""
    return random.Random(number)  # noqa: S311 - reproducible faults, not secrets


def remote_state(seed: int, *, files: int = 120, size: int = 2048) -> Snapshot:
    """A repository's content, different for every seed, sharing most files between seeds
    (as consecutive commits do)."""
    rng = seeded(seed)
    out: Snapshot = {}
    for i in range(files):
        # every file changes every 7 seeds, a tenth of them every seed
        generation = seed if i % 10 == 0 else seed // 7
        body = f"# dag {i} generation {generation}\n".encode()
        out[f"dags/part_{i % 6}/dag_{i:04}.py"] = (body * (size // len(body) + 1))[:size]
    out["lib/__init__.py"] = b""
    out["lib/helpers.py"] = f"SEED = {rng.randrange(1 << 30)}\n".encode()
    return out


@attrs.define
class Scene:
    """A scratch folder with a local remote, a manifest and a cache root; ``states`` holds
    every state the remote was ever in (what ``current`` may equal)."""

    root: Path
    repo_ids: tuple[str, ...] = ("r",)
    keep_versions: int = 3
    cache: Path = attrs.field(init=False)
    manifest: Path = attrs.field(init=False)
    states: dict[str, list[Snapshot]] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.cache = self.root / "cache"
        self.manifest = self.root / "dagfetch.toml"
        lines = []
        for repo_id in self.repo_ids:
            lines += [f"[dag_repositories.{repo_id}]", f'url = "{self.remote(repo_id)}"',
                      f"keep_versions = {self.keep_versions}", ""]
        self.manifest.write_text("\n".join(lines))

    def remote(self, repo_id: str = "r") -> Path:
        return self.root / "remotes" / repo_id

    def set_remote(self, files: Mapping[str, bytes], repo_id: str = "r") -> None:
        write_state(self.remote(repo_id), files)
        self.states.setdefault(repo_id, []).append(dict(files))

    def workspace(self) -> Workspace:
        return Workspace.from_manifest(self.manifest, cache_root=self.cache)

    def dagfetch(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dagfetch", "-m", str(self.manifest), "--home",
                str(self.cache), *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.dagfetch(*args), cwd=self.root, capture_output=True,
                              text=True, timeout=timeout)

    def kill_during(self, *args: str, after: float) -> int | None:
        """Start ``dagfetch ARGS``, ``kill -9`` it ``after`` seconds later; its exit code if
        it ended first, else None."""
        child = subprocess.Popen(self.dagfetch(*args), cwd=self.root, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            return child.wait(timeout=after)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            return None

    # -- the invariants ------------------------------------------------------------------

    def outcome(self, *, pinned: Iterable[tuple[str, str]] = (), sync_again: bool = True,
                expect_outside: Iterable[str] = ()) -> Outcome:
        """Check every invariant; the first broken one is the outcome's detail."""
        try:
            return self._check(tuple(pinned), sync_again, set(expect_outside))
        except DagfetchError as exc:
            return Outcome(False, detail=f"dagfetch error while checking: {exc}")

    def _check(self, pinned: tuple[tuple[str, str], ...], sync_again: bool,
               expect_outside: set[str]) -> Outcome:
        cache = VersionCache(self.cache)
        allowed = {"cache", "remotes", "dagfetch.toml", *expect_outside}
        stray = sorted(p.name for p in self.root.iterdir() if p.name not in allowed)
        if stray:
            return Outcome(False, escaped=True, detail=f"files outside the cache: {stray}")
        for repo_id in self.repo_ids:
            broken = self._check_versions(cache, repo_id)
            if broken is not None:
                return broken
        for repo_id, version_id in pinned:
            found = cache.record(repo_id, version_id)
            if found is None or not found.present:
                return Outcome(False, lost_data=True, detail=f"pinned {version_id} is gone")
        if sync_again:
            ws = self.workspace()
            for result in ws.sync():
                if not result.ok:
                    return Outcome(False, detail=f"the next sync failed: {result.error}")
                final = snapshot(ws.path(result.repo_id))
                if final != self.states[result.repo_id][-1]:
                    return Outcome(False, lost_data=True,
                                   detail=f"{result.repo_id}: the next sync is not the remote")
        return Outcome(True)

    def _check_versions(self, cache: VersionCache, repo_id: str) -> Outcome | None:
        current = cache.current_id(repo_id)
        if current is not None:
            try:
                served = snapshot(cache.path(repo_id))
            except DagfetchError as exc:
                return Outcome(False, lost_data=True, detail=f"current unusable: {exc}")
            if served not in self.states.get(repo_id, []):
                return Outcome(False, partial_version=True,
                               detail=f"{repo_id}: current {current} is no state the remote had")
        for record in cache.all_records(repo_id):
            version = record.version
            if not record.present:
                continue
            try:  # what `dagfetch path` serves, a stored tree rebuilt
                held = snapshot(cache.path(repo_id, version.version_id))
            except DagfetchError as exc:
                return Outcome(False, lost_data=True,
                               detail=f"{repo_id}: kept {version.version_id} unusable: {exc}")
            recorded = {f.path: f.sha256 for f in version.files if f.kind == "file"}
            if set(held) != {f.path for f in version.files} or any(
                hashlib.sha256(held[p]).hexdigest() != sha for p, sha in recorded.items()
            ):
                return Outcome(False, partial_version=True,
                               detail=f"{repo_id}: the tree of {version.version_id} is partial")
        return None

