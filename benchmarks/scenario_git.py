"""git scenarios against a real ``git daemon`` on 127.0.0.1: cold, no-change and one-new-commit
syncs, each beside the git command-line tool and Airflow's GitDagBundle doing the same job on
the same repository in the same run: through the Python API beside in-process peers (the
bundle called in its own long-lived process), and as whole ``dagfetch`` processes beside whole
processes (git, a fresh process running the bundle). The daemon's log counts connections
(each is one upload-pack request: a ref lookup or a fetch). Disk: one version plus one new
commit, beside a shallow clone and the bundle's folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dulwich.client import TCPGitClient

from benchmarks.data import disk_usage, file_bytes, relpath
from benchmarks.harness import Config, Row, Target, cpu_extra, ratio_target, row
from benchmarks.peers import airflow
from benchmarks.peers import rows as peer_rows
from benchmarks.process import cpu_recorded, dagfetch_cli, write_manifest
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


API = "dagfetch cold sync"
CLI = "dagfetch CLI cold sync"
API_SYNC = "dagfetch sync"
CLI_SYNC = "dagfetch CLI sync"
AIRFLOW = "Airflow GitDagBundle"


def _run(
    config: Config, server: GitDaemon, count: int, commits: int
) -> tuple[list[Row], list[Target]]:
    work = config.workdir
    author = work / "author"
    make_repository(server.root, author, count, commits)
    url = server.url(REPO)
    repositories = {"r": {"url": url}}
    manifest = parse_manifest({"dag_repositories": repositories})
    manifest_file = write_manifest(work / "dagfetch.json", repositories)
    rows: list[Row] = []

    def requests(fn: Callable[[], object]) -> dict[str, int]:
        """Upload-pack requests (connections) one run of ``fn`` makes."""
        before = server.requests(REPO)
        fn()
        return {"upload-pack requests": server.requests(REPO) - before}

    def timed(scenario: str, name: str, fn: Callable[[], object], **kwargs: Any) -> Row:
        """``row`` with the client CPU of the measured runs in ``extra``."""
        cpu: list[float] = []
        measured = row(scenario, name, cpu_recorded(fn, cpu), config, count=requests, **kwargs)
        measured.extra.update(cpu_extra(cpu[config.warmup : config.warmup + config.repeat]))
        return measured

    # -- cold ------------------------------------------------------------------------------
    fresh: list[Path] = []

    def new_dir() -> Path:
        for old in fresh:
            subprocess.run(["chmod", "-R", "u+w", str(old)], check=True)
            shutil.rmtree(old)
        fresh.clear()
        fresh.append(work / uuid.uuid4().hex)
        return fresh[0]

    def setup() -> None:
        new_dir()

    def dagfetch_cold() -> None:
        Workspace(manifest, cache_root=fresh[0]).sync_one("r")

    def clone() -> None:
        git_cli("clone", "-q", "--depth", "1", url, fresh[0])

    rows.append(
        timed(
            "git cold", API, dagfetch_cold, setup=setup, extra={"files": count, "commits": commits}
        )
    )
    if not config.quick:  # whole processes cost seconds each: CI measures the no-change one
        cli_cold = dagfetch_cli(manifest_file, lambda: fresh[0], "sync")
        rows.append(timed("git cold", CLI, cli_cold, setup=setup))
    # git is a whole process: the baseline of the Python API (the target) and the CLI
    rows.append(
        timed(
            "git cold", "git clone --depth 1", clone, setup=setup, baseline_for=API, also_for=(CLI,)
        )
    )
    python = None if config.quick else airflow.airflow_python()

    def bundle(storage: Path) -> airflow.AirflowBundle:
        assert python is not None
        return airflow.git_bundle(python, storage, url=url)

    if python is not None:
        rows.extend(
            peer_rows.cold_rows(
                config, "git cold", AIRFLOW, bundle, new_dir, requests, api=API, cli=CLI
            )
        )
    setup()
    targets = [
        ratio_target(
            "git cold",
            API,
            "git clone --depth 1",
            1.0,
            "cold sync (Python API) <= 1.0x git clone --depth 1",
        ),
    ]
    if not config.quick:  # the quick run has no whole-process cold row
        targets.append(
            ratio_target("git cold", CLI, "git clone --depth 1", 1.5,
                         "cold sync (whole process) <= 1.5x git clone --depth 1")
        )
    if python is not None:
        targets.append(
            ratio_target(
                "git cold",
                API,
                f"{AIRFLOW}.initialize",
                1.0,
                "cold sync (Python API) <= 1.0x GitDagBundle.initialize",
            )
        )

    # -- no change -------------------------------------------------------------------------
    ws = Workspace(manifest, cache_root=work / "warm")
    ws.sync_one("r")
    cli_home = work / "cli-warm"
    cli_sync = dagfetch_cli(manifest_file, lambda: cli_home, "sync")
    cli_sync()
    checkout = work / "checkout"
    git_cli("clone", "-q", "--depth", "1", url, checkout)
    warm_bundle = bundle(work / "airflow-warm") if python is not None else None
    if warm_bundle is not None:
        warm_bundle.initialize()

    def sync() -> None:
        ws.sync_one("r")

    def ls_remote() -> None:
        git_cli("ls-remote", url, "refs/heads/main")

    rows.append(timed("git no change", API_SYNC, sync))
    rows.append(timed("git no change", CLI_SYNC, cli_sync))
    client = TCPGitClient("127.0.0.1", server.port)

    def dulwich_refs() -> None:
        client.get_refs(f"/{REPO}".encode(), ref_prefix=[b"refs/heads/main"])

    rows.append(
        timed(
            "git no change", "dulwich ref lookup, in process", dulwich_refs, baseline_for=API_SYNC
        )
    )
    rows.append(timed("git no change", "git ls-remote", ls_remote, baseline_for=CLI_SYNC))
    if warm_bundle is not None:
        rows.append(
            peer_rows.refresh_row(
                config, "git no change", AIRFLOW, warm_bundle, None, requests, api=API_SYNC
            )
        )
    targets.append(
        ratio_target(
            "git no change",
            CLI_SYNC,
            "git ls-remote",
            1.0,
            "no-change sync (whole process) <= 1.0x git ls-remote",
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

    fetch_reset = "git fetch --depth 1 + reset --hard"
    rows.append(timed("git one commit", API_SYNC, sync, setup=new_commit))
    if not config.quick:
        rows.append(timed("git one commit", CLI_SYNC, cli_sync, setup=new_commit))
    rows.append(
        timed(
            "git one commit",
            fetch_reset,
            fetch_and_reset,
            setup=new_commit,
            baseline_for=API_SYNC,
            also_for=(CLI_SYNC,),
        )
    )
    if warm_bundle is not None:
        rows.append(
            peer_rows.refresh_row(
                config, "git one commit", AIRFLOW, warm_bundle, new_commit, requests, api=API_SYNC
            )
        )
        warm_bundle.close()
    targets.append(
        ratio_target(
            "git one commit",
            API_SYNC,
            fetch_reset,
            1.0,
            "one new commit (Python API) <= 1.0x git fetch + reset",
        )
    )

    # -- disk: one version plus one new commit -----------------------------------------------
    rows.extend(_disk(config, manifest, url, new_commit, python))
    targets.append(
        ratio_target(
            "git disk",
            "dagfetch cache",
            "shallow clone",
            1.0,
            "disk for one version + one commit <= 1.0x a shallow clone",
        )
    )
    return rows, targets


def _disk(
    config: Config,
    manifest: Any,
    url: str,
    new_commit: Callable[[], None],
    python: Path | None,
) -> list[Row]:
    """Disk after a cold sync and one more commit: dagfetch's whole cache (the git store
    included), a shallow clone fetched and reset once, and the GitDagBundle's storage."""
    work = config.workdir / "disk"
    work.mkdir()
    ws = Workspace(manifest, cache_root=work / "dagfetch")
    ws.sync_one("r")
    clone = work / "clone"
    git_cli("clone", "-q", "--depth", "1", url, clone)
    bundle = airflow.git_bundle(python, work / "airflow", url=url) if python else None
    if bundle is not None:
        bundle.initialize()
    new_commit()
    ws.sync_one("r")
    git_cli("fetch", "-q", "--depth", "1", "origin", "main", cwd=clone)
    git_cli("reset", "-q", "--hard", "FETCH_HEAD", cwd=clone)
    git_store = ws.cache.layout.work_dir("r")
    sizes = {
        "dagfetch cache": (disk_usage(work / "dagfetch"), None),
        "dagfetch git store alone": (disk_usage(git_store), None),
        "shallow clone": (disk_usage(clone), "dagfetch cache"),
    }
    if bundle is not None:
        sizes[f"{AIRFLOW} folder"] = (
            bundle.refresh().size,
            "dagfetch cache",
        )
        bundle.close()
    return [
        Row("git disk", name, [float(size)], unit="B", baseline_for=base)
        for name, (size, base) in sizes.items()
    ]


SCENARIOS = {"git": git_scenarios}
