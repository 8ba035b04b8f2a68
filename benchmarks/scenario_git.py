"""git scenarios against a real ``git daemon`` on 127.0.0.1: cold, no-change and one-new-commit
syncs, each beside the git command-line tool doing the same job on the same repository in the
same run. The daemon's log counts connections (each is one upload-pack request: a ref lookup
or a fetch)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dulwich.client import TCPGitClient

from benchmarks.data import file_bytes, relpath
from benchmarks.harness import Config, Row, Target, ratio_target, row
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.servers.git import GIT_ENV, GitDaemon, git

REPO = "bench.git"
FILE_SIZE = 2048


@contextmanager
def daemon(workdir: Path) -> Iterator[GitDaemon]:
    root = workdir / "served"
    root.mkdir()
    server = GitDaemon(root, workdir / "daemon.log")
    try:
        yield server
    finally:
        server.stop()


def make_repository(root: Path, work: Path, count: int, commits: int) -> None:
    """A bare repository of ``count`` files with ``commits`` commits, each after the first
    changing 1% of the files."""
    bare = root / REPO
    git("init", "-q", "--bare", "-b", "main", bare)
    git("init", "-q", "-b", "main", work)
    for i in range(count):
        target = work / relpath(i)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file_bytes(i, FILE_SIZE))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "commit 0", cwd=work)
    step = max(1, count // 100)
    for c in range(1, commits):
        for i in range(c % step, count, 100):
            (work / relpath(i)).write_bytes(file_bytes(i, FILE_SIZE, generation=c))
        git("commit", "-q", "-a", "-m", f"commit {c}", cwd=work)
    git("remote", "add", "origin", bare, cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)


def git_cli(*args: str | Path, cwd: Path | None = None) -> None:
    subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def git_scenarios(config: Config) -> tuple[list[Row], list[Target]]:
    count, commits = (200, 5) if config.quick else (2_000, 50)
    with daemon(config.workdir) as server:
        return _run(config, server, count, commits)


def _run(
    config: Config, server: GitDaemon, count: int, commits: int
) -> tuple[list[Row], list[Target]]:
    work = config.workdir
    author = work / "author"
    make_repository(server.root, author, count, commits)
    url = server.url(REPO)
    manifest = parse_manifest({"dag_repositories": {"r": {"url": url}}})
    rows: list[Row] = []

    def requests(fn: Callable[[], object]) -> dict[str, int]:
        """Upload-pack requests (connections) one run of ``fn`` makes."""
        before = server.requests(REPO)
        fn()
        return {"upload-pack requests": server.requests(REPO) - before}

    # -- cold ------------------------------------------------------------------------------
    fresh: list[Path] = []

    def setup() -> None:
        for old in fresh:
            subprocess.run(["chmod", "-R", "u+w", str(old)], check=True)
            shutil.rmtree(old)
        fresh.clear()
        fresh.append(work / uuid.uuid4().hex)

    def dagfetch_cold() -> None:
        Workspace(manifest, cache_root=fresh[0]).sync_one("r")

    def clone() -> None:
        git_cli("clone", "-q", "--depth", "1", url, fresh[0])

    name = "dagfetch cold sync"
    rows.append(
        row(
            "git cold",
            name,
            dagfetch_cold,
            config,
            setup=setup,
            count=requests,
            extra={"files": count, "commits": commits},
        )
    )
    rows.append(
        row(
            "git cold",
            "git clone --depth 1",
            clone,
            config,
            setup=setup,
            baseline_for=name,
            count=requests,
        )
    )
    setup()
    targets = [ratio_target("git cold", name, "git clone --depth 1", 1.5)]

    # -- no change -------------------------------------------------------------------------
    ws = Workspace(manifest, cache_root=work / "warm")
    ws.sync_one("r")
    checkout = work / "checkout"
    git_cli("clone", "-q", "--depth", "1", url, checkout)

    def sync() -> None:
        ws.sync_one("r")

    def ls_remote() -> None:
        git_cli("ls-remote", url, "refs/heads/main")

    rows.append(row("git no change", "dagfetch sync", sync, config, count=requests))
    rows.append(
        row(
            "git no change",
            "git ls-remote",
            ls_remote,
            config,
            baseline_for="dagfetch sync",
            count=requests,
        )
    )
    client = TCPGitClient("127.0.0.1", server.port)

    def dulwich_refs() -> None:
        client.get_refs(f"/{REPO}".encode(), ref_prefix=[b"refs/heads/main"])

    rows.append(
        row(
            "git no change",
            "dulwich ref lookup, in process",
            dulwich_refs,
            config,
            baseline_for="dagfetch sync",
            count=requests,
        )
    )
    # git ls-remote is a new process where dagfetch is in process, hence the in-process ref
    # lookup beside it: the ratio to that is dagfetch's own overhead on a no-change check
    targets.append(
        ratio_target(
            "git no change",
            "dagfetch sync",
            "git ls-remote",
            1.2,
            "no-change sync <= 1.2x one ref lookup (git ls-remote)",
        )
    )

    # -- one new commit --------------------------------------------------------------------
    generation = iter(range(commits, 1_000_000))
    changed = relpath(count // 2)

    def new_commit() -> None:
        g = next(generation)
        (author / changed).write_bytes(file_bytes(count // 2, FILE_SIZE, generation=g))
        git("commit", "-q", "-a", "-m", f"commit {g}", cwd=author)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=author)

    def fetch_and_reset() -> None:
        git_cli("fetch", "-q", "--depth", "1", "origin", "main", cwd=checkout)
        git_cli("reset", "-q", "--hard", "FETCH_HEAD", cwd=checkout)

    name = "dagfetch sync"
    rows.append(row("git one commit", name, sync, config, setup=new_commit, count=requests))
    rows.append(
        row(
            "git one commit",
            "git fetch --depth 1 + reset --hard",
            fetch_and_reset,
            config,
            setup=new_commit,
            baseline_for=name,
            count=requests,
        )
    )
    return rows, targets


SCENARIOS = {"git": git_scenarios}
