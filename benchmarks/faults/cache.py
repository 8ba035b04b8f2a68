"""Fault classes of the local side: processes killed at random moments, a full disk, many
processes at once, a damaged cache. Each attempt is seeded by its number, so a failing one can
be run again alone (``python -m benchmarks.faults --only NAME --attempts 1 --first N``)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.faults import Outcome, fault_class
from benchmarks.faults.support import (
    REPO_ROOT,
    Scene,
    Snapshot,
    remote_state,
    seeded,
    snapshot,
)
from dagfetch.cache import VersionCache
from tests.graphs.dagfiles import chain_dag, repo_files

# how long a command takes here (start-up included), measured once per process, so that
# kills land inside the work rather than before it
_typical: dict[str, float] = {}


def typical_duration(scene: Scene, key: str, *args: str) -> float:
    if key not in _typical:
        started = time.monotonic()
        scene.run(*args)
        _typical[key] = time.monotonic() - started
    return _typical[key]


def synced_scene(root: Path, seeds: range, **kwargs: object) -> Scene:
    """A scene whose remote went through ``seeds`` states, each synced (in-process)."""
    scene = Scene(root, **kwargs)  # type: ignore[arg-type]
    ws = scene.workspace()
    for seed in seeds:
        for repo_id in scene.repo_ids:
            scene.set_remote(remote_state(seed), repo_id)
        ws.sync()
    return scene


def retire_now(scene: Scene, repo_id: str = "r") -> None:
    """Age every retired version past gc's grace period, so gc stores their trees."""
    cache = VersionCache(scene.cache)
    retired = cache.state(repo_id).get("retired") or {}
    cache.update_state(repo_id, retired={v: 0.0 for v in retired})


@fault_class("kill-sync", "sync", "kill -9 at a random moment of `dagfetch sync`")
def kill_sync(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = synced_scene(scratch, range(1))
    scene.set_remote(remote_state(rng.randrange(1, 100), files=rng.choice([60, 240])))
    typical = typical_duration(scene, "startup", "status") + 0.4
    scene.kill_during("sync", after=rng.uniform(0.0, typical))
    return scene.outcome()


@fault_class("kill-gc", "gc", "kill -9 at a random moment of `dagfetch gc` storing and evicting",
             quick_attempts=2)
def kill_gc(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = synced_scene(scratch, range(0, 28, 7), keep_versions=2)  # 4 versions, 1 evicted
    ws = scene.workspace()
    kept = [e.version.version_id for e in ws.versions("r") if e.present and not e.current]
    pinned = [("r", kept[-1])] if kept and rng.random() < 0.5 else []
    for repo_id, version_id in pinned:
        ws.pin(repo_id, version_id, "fault-run")
    retire_now(scene)
    typical = typical_duration(scene, "startup", "status") + 0.3
    scene.kill_during("gc", "--grace", "0", after=rng.uniform(0.0, typical))
    return scene.outcome(pinned=pinned)


def dag_state(seed: int, dags: int = 12) -> Snapshot:
    return repo_files(**{
        f"dag_{d:02}": chain_dag(f"dag_{d}", [f"t{i}" for i in range(2 + (seed + d) % 4)])
        for d in range(dags)})


@fault_class("kill-sync-extract", "extract",
             "kill -9 at a random moment of `dagfetch sync --extract`", quick_attempts=1)
def kill_sync_extract(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = Scene(scratch)
    scene.set_remote(dag_state(0))
    first = scene.run("sync", "--extract")
    if first.returncode != 0:
        return Outcome(False, detail=f"the first sync --extract failed: {first.stderr[-300:]}")
    scene.set_remote(dag_state(rng.randrange(1, 50)))
    typical = typical_duration(scene, "extract", "sync", "--extract") + 0.3
    scene.set_remote(dag_state(rng.randrange(50, 100)))
    scene.kill_during("sync", "--extract", after=rng.uniform(0.0, typical))
    outcome = scene.outcome(sync_again=False)
    if not outcome.survived:
        return outcome
    again = scene.run("sync", "--extract", "--json")
    if again.returncode != 0 or "Traceback" in again.stderr:
        return Outcome(False, detail=f"the next sync --extract failed: {again.stderr[-300:]}")
    listed = scene.run("graph", "list", "--json")
    if listed.returncode != 0:
        return Outcome(False, detail=f"graph list failed after the kill: {listed.stderr[-300:]}")
    return scene.outcome()


@fault_class("full-disk", "disk",
             "sync two repositories into a tmpfs with 0-8 KiB (or up to 64 KiB) left",
             quick_attempts=3, needs_root="it mounts a small tmpfs")
def full_disk(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = Scene(scratch, repo_ids=("r", "quiet"))
    scene.cache.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(scene.cache)],
                   check=True, capture_output=True)
    try:
        return _full_disk(scene, rng)
    finally:
        subprocess.run(["umount", "-l", str(scene.cache)], check=False, capture_output=True)


def _full_disk(scene: Scene, rng: random.Random) -> Outcome:
    ws = scene.workspace()
    for repo_id in scene.repo_ids:
        scene.set_remote(remote_state(0, files=24, size=1024), repo_id)
    ws.sync()
    before = ws.cache.current_id("r")
    filler = scene.cache / "filler"
    free_kib = rng.randrange(0, 9) if rng.random() < 0.6 else rng.randrange(9, 64)
    st = os.statvfs(scene.cache)
    with open(filler, "wb") as fh, contextlib.suppress(OSError):  # OSError: full already
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - free_kib * 1024))
    scene.set_remote(remote_state(rng.randrange(1, 50), files=24, size=1024 + rng.randrange(7)))
    done = scene.run("sync", "--json")
    if "Traceback" in done.stderr or done.returncode not in (0, 1):
        return Outcome(False, detail=f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    results = {r["repo_id"]: r for r in json.loads(done.stdout or "[]")}
    if results.get("quiet", {}).get("error"):
        return Outcome(False, detail=f"quiet repository not synced: {results['quiet']['error']}")
    if results.get("r", {}).get("error") and ws.cache.current_id("r") != before:
        return Outcome(False, partial_version=True, detail="current switched in a failed sync")
    broken = scene.outcome(sync_again=False)
    if not broken.survived:
        return broken
    filler.unlink()
    return scene.outcome()


_READER = """
import hashlib, sys, time
from dagfetch.cache import VersionCache
cache, repo, which, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
vc = VersionCache(cache)
end = time.monotonic() + seconds
reads = 0
while time.monotonic() < end:
    version = vc.current(repo) if which == "current" else vc.get(repo, which)
    folder = vc.path(repo, version.version_id)
    for f in version.files:
        data = (folder / f.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != f.sha256:
            sys.exit(f"{version.version_id}: {f.path} is not what its record says")
    reads += 1
print(reads)
"""


@fault_class("concurrent", "sync",
             "8 `dagfetch sync` at once, with gc and readers of current and of a pinned version",
             quick_attempts=1)
def concurrent(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = synced_scene(scratch, range(2), keep_versions=2)
    ws = scene.workspace()
    pinned = next(e.version.version_id for e in ws.versions("r") if not e.current)
    ws.pin("r", pinned, "fault-run")
    for _ in range(1):  # the remote changes between rounds, never during one
        scene.set_remote(remote_state(rng.randrange(2, 100)))
        retire_now(scene)
        procs = [subprocess.Popen(scene.dagfetch("sync"), cwd=scene.root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        procs.append(subprocess.Popen(scene.dagfetch("gc", "--grace", "0"), cwd=scene.root,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True))
        readers = [subprocess.Popen([sys.executable, "-c", _READER, str(scene.cache), "r",
                                     which, "2.0"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
                   for which in ("current", pinned)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            if proc.returncode != 0:
                return Outcome(False, detail=f"a concurrent command failed: {err.strip()[-300:]}")
        for reader in readers:
            _, err = reader.communicate(timeout=300)
            if reader.returncode != 0:
                return Outcome(False, partial_version=True,
                               detail=f"a reader saw a broken version: {err.strip()[-300:]}")
    return scene.outcome(pinned=[("r", pinned)])


def _damage_object(cache: VersionCache, rng: random.Random, *, truncate: bool) -> None:
    objects = cache.objects.all_objects()
    if not objects:
        return
    path = cache.layout.object_path(rng.choice(sorted(objects)))
    os.chmod(path, 0o600)
    data = path.read_bytes()
    if truncate or not data:
        path.write_bytes(data[: len(data) // 2])
    else:
        at = rng.randrange(len(data))
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1:])


def _damage(scene: Scene, rng: random.Random, kind: str) -> None:
    cache = VersionCache(scene.cache)
    meta = cache.layout.meta("r")
    current = cache.current_id("r") or ""
    records = sorted((meta / "versions").glob("*.json"))
    if kind in ("flip-object", "truncate-object"):
        _damage_object(cache, rng, truncate=kind == "truncate-object")
    elif kind == "record":
        target = meta / "versions" / f"{current}.json" if rng.random() < 0.5 else (
            rng.choice(records))
        target.write_text(rng.choice(["{not json", "[1, 2]", '{"files": 7}', ""]))
    elif kind == "state":
        (meta / "state.json").write_text(rng.choice(
            ["garbage", "[]", '{"retired": [1], "last_error": 3, "became_current": "x"}']))
    elif kind == "current":
        link = cache.layout.current_link("r")
        link.unlink()
        link.symlink_to(rng.choice(["0" * 32, "../../etc", "no such"]))
    elif kind == "leftovers":
        (meta / "versions" / f".{current}.json.a1b2c3").write_text('{"half')
        (meta / ".state.json.x9y8z7").write_text("")
    elif kind == "half-tree":  # what a killed 0.1.0 gc left: an unmarked, half-deleted tree
        kept = [r.version.version_id for r in cache.all_records("r")
                if r.present and r.version.version_id != current]
        if kept:
            version_id = rng.choice(kept)
            tree = cache.layout.version("r", version_id)
            cache.get("r", version_id)
            cache.layout.tree_marker("r", version_id).unlink()
            for dirpath, _, files in os.walk(tree):
                os.chmod(dirpath, 0o700)
                for name in files[: len(files) // 2]:
                    os.unlink(os.path.join(dirpath, name))


DAMAGE = ("flip-object", "truncate-object", "record", "state", "current", "leftovers",
          "half-tree")


@fault_class("damaged-cache", "cache",
             "flipped or truncated objects, unreadable records and state, a dangling current, "
             "leftovers, half trees; then status, versions, gc, verify --repair, sync",
             quick_attempts=2)
def damaged_cache(scratch: Path, attempt: int) -> Outcome:
    rng = seeded(attempt)
    scene = synced_scene(scratch, range(0, 21, 7))
    kinds = rng.sample(DAMAGE, rng.randrange(1, 4))
    for kind in kinds:
        _damage(scene, rng, kind)
    for command in (["status"], ["versions", "r"], ["gc"], ["status", "--json"]):
        done = scene.run(*command)
        if done.returncode != 0 or "Traceback" in done.stderr:
            return Outcome(False, detail=f"{kinds}: `dagfetch {' '.join(command)}` exit "
                           f"{done.returncode}: {done.stderr.strip()[-300:]}")
    repaired = scene.run("verify", "--repair", "--json")
    if repaired.returncode != 0:
        return Outcome(False, detail=f"{kinds}: verify --repair exit {repaired.returncode}: "
                       f"{(repaired.stdout + repaired.stderr).strip()[-300:]}")
    synced = scene.run("sync")  # "everything can be rebuilt by syncing"
    if synced.returncode != 0:
        return Outcome(False, detail=f"{kinds}: the sync after the repair exit "
                       f"{synced.returncode}: {synced.stderr.strip()[-300:]}")
    outcome = scene.outcome()
    if not outcome.survived:
        return Outcome(False, outcome.lost_data, outcome.partial_version, outcome.escaped,
                       f"{kinds}: {outcome.detail}")
    left = VersionCache(scene.cache).audit().bad
    if left:
        return Outcome(False, detail=f"{kinds}: still bad after repair and sync: {left[0]}")
    served = snapshot(scene.workspace().path("r"))
    if served != scene.states["r"][-1]:
        return Outcome(False, lost_data=True, detail=f"{kinds}: current is not the remote")
    return outcome
