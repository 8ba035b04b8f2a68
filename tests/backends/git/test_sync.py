"""What a git sync costs and what it can bring back: ref lookups, incremental fetches,
pinned and evicted commits, force-pushes, refs, and the tree rules (symlinks, submodules,
LFS pointers). Every test talks to a real git server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dagfetch.backends.git.store import PACK_LIMIT
from dagfetch.errors import (
    FetchError,
    ManifestError,
    RemoteNotFoundError,
    VersionUnavailableError,
)
from dagfetch.manifest import parse_manifest
from dagfetch.workspace import Workspace
from tests.backends.git.helpers import (
    REPO,
    drop_store,
    make_ws,
    pack_objects,
    snapshot,
    store_path,
    tree_files,
)
from tests.servers.git import GitRemote, GitServers, git

BASE = {"dag_a.py": b"# a\n", "lib/util.py": b"X = 1\n"}


@pytest.fixture
def daemon_remote(git_servers: GitServers, tmp_path: Path) -> GitRemote:
    return GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url)


@pytest.fixture
def http_remote(git_servers: GitServers, tmp_path: Path) -> GitRemote:
    return GitRemote.create(git_servers.root, tmp_path, git_servers.http_open.url)


def seed(remote: GitRemote, files: dict[str, bytes], message: str = "publish") -> str:
    for path, data in files.items():
        remote.write(path, data)
    return remote.push(message)


# -- the cheap check ---------------------------------------------------------------------------


def test_no_change_sync_is_one_ref_lookup_and_writes_nothing(
    daemon_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    seed(daemon_remote, BASE)
    downloads: list[str] = []
    ws = make_ws(daemon_remote, tmp_path, downloads=downloads)
    first = ws.sync_one(REPO)
    assert first.version_id == daemon_remote.head()
    name = daemon_remote.bare.name
    before_requests = git_servers.daemon.requests(name)
    before = snapshot(ws.cache.root)
    downloads.clear()

    second = ws.sync_one(REPO)

    assert not second.changed and second.version_id == first.version_id
    assert git_servers.daemon.requests(name) - before_requests == 1  # one ls-remote
    assert downloads == []
    assert snapshot(ws.cache.root) == before  # no new file, nothing rewritten


def test_a_cold_sync_and_a_new_commit_each_take_one_connection(
    daemon_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    """The ref lookup and the fetch share one upload-pack connection, as git's do."""
    seed(daemon_remote, BASE)
    name = daemon_remote.bare.name
    ws = make_ws(daemon_remote, tmp_path)
    before = git_servers.daemon.requests(name)
    assert ws.sync_one(REPO).changed
    assert git_servers.daemon.requests(name) - before == 1
    newer = seed(daemon_remote, {"dag_a.py": b"# newer\n"})
    before = git_servers.daemon.requests(name)
    assert ws.sync_one(REPO).version_id == newer
    assert git_servers.daemon.requests(name) - before == 1
    assert tree_files(ws.path(REPO)) == {**BASE, "dag_a.py": b"# newer\n"}


def test_a_no_change_sync_of_a_local_repository_asks_for_no_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dulwich's local client builds a pack of every object even when nothing is wanted
    (seconds at 5,000 files): a local no-change sync reads the refs and fetches nothing."""
    from dulwich.client import LocalGitClient

    source, bare = tmp_path / "source", tmp_path / "repo.git"
    git("init", "-q", "--bare", "-b", "main", bare)
    git("init", "-q", "-b", "main", source)
    (source / "dag_a.py").write_bytes(b"x = 1\n")
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "one", cwd=source)
    git("push", "-q", bare, "HEAD:refs/heads/main", cwd=source)
    ws = Workspace(parse_manifest({"dag_repositories": {REPO: {"url": f"git+file://{bare}"}}}),
                   cache_root=tmp_path / "cache")
    assert ws.sync_one(REPO).changed

    def no_pack(*args: object, **kwargs: object) -> None:
        raise AssertionError("fetch_pack called for a commit the store holds")

    monkeypatch.setattr(LocalGitClient, "fetch_pack", no_pack)
    assert not ws.sync_one(REPO).changed


@pytest.mark.parametrize(("protocol", "expected"), [
    (None, [("GET", "info/refs?service=git-upload-pack"), ("POST", "git-upload-pack")]),
    (0, [("GET", "info/refs?service=git-upload-pack")]),
])
def test_no_change_sync_over_http_requests(
    http_remote: GitRemote, git_servers: GitServers, tmp_path: Path,
    protocol: int | None, expected: list[tuple[str, str]],
) -> None:
    seed(http_remote, BASE)
    options = {"protocol_version": protocol} if protocol is not None else {}
    ws = make_ws(http_remote, tmp_path, options=options)
    ws.sync_one(REPO)
    name = http_remote.bare.name
    seen = len(git_servers.http_open.requests_for(name))
    assert not ws.sync_one(REPO).changed
    requests = git_servers.http_open.requests_for(name)[seen:]
    # protocol v2 asks for the capabilities, then ls-refs for the one ref; v0 gets every
    # ref in one GET
    assert [(m, p.split(f"/{name}/", 1)[1]) for m, p in requests] == expected


def test_pinned_commit_needs_no_ref_lookup(
    daemon_remote: GitRemote, git_servers: GitServers, tmp_path: Path
) -> None:
    sha = seed(daemon_remote, BASE)
    seed(daemon_remote, {"dag_a.py": b"# newer\n"})
    ws = make_ws(daemon_remote, tmp_path, ref=sha)
    assert ws.sync_one(REPO).version_id == sha
    name = daemon_remote.bare.name
    before = git_servers.daemon.requests(name)
    assert not ws.sync_one(REPO).changed
    assert git_servers.daemon.requests(name) == before  # a full sha is its own answer
    assert tree_files(ws.path(REPO)) == BASE


# -- incremental -----------------------------------------------------------------------------


def test_one_of_a_thousand_files_changes(daemon_remote: GitRemote, tmp_path: Path) -> None:
    files = {f"dags/f{i:04}.py": f"# dag {i}\nX = {i}\n".encode() for i in range(1000)}
    seed(daemon_remote, files)
    downloads: list[str] = []
    ws = make_ws(daemon_remote, tmp_path, downloads=downloads)
    first = ws.sync_one(REPO)
    assert first.downloaded == 1000
    old = ws.path(REPO)
    objects_before = pack_objects(ws)
    downloads.clear()

    seed(daemon_remote, {"dags/f0500.py": b"# dag 500, changed\n"})
    second = ws.sync_one(REPO)

    new = ws.path(REPO)
    assert second.changed and (second.downloaded, second.reused) == (1, 999)
    assert downloads == ["dags/f0500.py"]
    # the fetch brought the new commit, its two changed trees and one blob; the store keeps
    # the commit and the trees (the blob went to the content store)
    assert pack_objects(ws) - objects_before == 3
    assert (new / "dags/f0500.py").read_bytes() == b"# dag 500, changed\n"
    assert (old / "dags/f0500.py").read_bytes() == files["dags/f0500.py"]
    same_inode = sum(
        (new / p).stat().st_ino == (old / p).stat().st_ino for p in files if p != "dags/f0500.py"
    )
    assert same_inode == 999
    # the version record holds only the difference from the previous commit
    record = json.loads(ws.cache.layout.record(REPO, second.version_id or "").read_text())
    assert record["base"] == first.version_id
    assert [f["path"] for f in record["changed"]] == ["dags/f0500.py"]


def test_a_long_run_of_new_commits_keeps_the_store_to_a_few_packs(
    daemon_remote: GitRemote, tmp_path: Path
) -> None:
    """Each fetch adds a pack; a watch loop of many commits must not pile them up (every
    lookup tries every pack), and the consolidated store still serves incremental fetches."""
    seed(daemon_remote, BASE)
    ws = make_ws(daemon_remote, tmp_path, keep_versions=2)
    ws.sync_one(REPO)
    pack_dir = store_path(ws) / "objects" / "pack"
    most = 0
    for i in range(PACK_LIMIT + 5):
        seed(daemon_remote, {"dag_a.py": f"# generation {i}\n".encode()})
        result = ws.sync_one(REPO)
        assert result.changed
        most = max(most, len(list(pack_dir.glob("*.pack"))))
    assert most <= PACK_LIMIT
    assert len(list(pack_dir.glob("*.pack"))) < PACK_LIMIT
    last = f"# generation {PACK_LIMIT + 4}\n".encode()
    assert tree_files(ws.path(REPO)) == {**BASE, "dag_a.py": last}
    # the consolidated store still holds the tip's trees: the next commit brings one blob
    seed(daemon_remote, {"new.py": b"n\n"})
    result = ws.sync_one(REPO)
    assert result.changed and (result.downloaded, result.reused) == (1, 2)


# -- old commits -------------------------------------------------------------------------------


def test_old_commit_is_materialized_after_eviction(
    daemon_remote: GitRemote, tmp_path: Path
) -> None:
    first_sha = seed(daemon_remote, BASE)
    ws = make_ws(daemon_remote, tmp_path, keep_versions=1)
    ws.sync_one(REPO)
    seed(daemon_remote, {"dag_a.py": b"# a2\n", "new.py": b"n\n"})
    second = ws.sync_one(REPO)
    assert (REPO, first_sha) in ws.gc().evicted
    drop_store(ws)  # the git objects go too: the commit must come from the server again

    path = ws.path(REPO, first_sha)

    assert tree_files(path) == BASE
    assert ws.cache.current_id(REPO) == second.version_id


def test_never_synced_commit_is_fetched_by_sha(daemon_remote: GitRemote, tmp_path: Path) -> None:
    old = seed(daemon_remote, BASE)
    seed(daemon_remote, {"dag_a.py": b"# moved on\n"})
    ws = make_ws(daemon_remote, tmp_path)
    path = ws.pin(REPO, old, holder="run-7")  # nothing synced yet: fetched by its id
    assert tree_files(path) == BASE
    assert ws.cache.current_id(REPO) is None


def test_force_push_gives_a_new_version_and_pinned_runs_still_resolve(
    daemon_remote: GitRemote, tmp_path: Path
) -> None:
    old_sha = seed(daemon_remote, BASE)
    ws = make_ws(daemon_remote, tmp_path, keep_versions=1)
    ws.sync_one(REPO)
    ws.pin(REPO, old_sha, holder="run-1")

    new_sha = daemon_remote.force_push_rewrite({"dag_a.py": b"# rewritten\n"})
    result = ws.sync_one(REPO)

    assert result.changed and result.version_id == new_sha != old_sha
    assert tree_files(ws.path(REPO)) == {"dag_a.py": b"# rewritten\n"}
    assert ws.gc().evicted == ()  # pinned
    assert tree_files(ws.path(REPO, old_sha)) == BASE
    # once unpinned and evicted, the rewritten-away commit still comes back by its id
    ws.unpin(REPO, old_sha, holder="run-1")
    assert (REPO, old_sha) in ws.gc().evicted
    drop_store(ws)
    assert tree_files(ws.path(REPO, old_sha)) == BASE


def test_server_that_sends_only_ref_tips_is_deepened(
    git_servers: GitServers, tmp_path: Path
) -> None:
    remote = GitRemote.create(git_servers.root, tmp_path, git_servers.daemon.url, any_sha=False)
    old = seed(remote, BASE)
    for i in range(3):
        seed(remote, {"dag_a.py": f"# {i}\n".encode()})
    ws = make_ws(remote, tmp_path, options={"protocol_version": 0})
    ws.sync_one(REPO)
    drop_store(ws)
    assert tree_files(ws.path(REPO, old)) == BASE


# -- refs ----------------------------------------------------------------------------------------


def test_branch_and_tags(daemon_remote: GitRemote, tmp_path: Path) -> None:
    v1 = seed(daemon_remote, BASE)
    daemon_remote.push_branch("release")
    daemon_remote.tag("v1")
    daemon_remote.tag("v1-annotated", annotated=True)
    v2 = seed(daemon_remote, {"dag_a.py": b"# main moved on\n"})
    assert make_ws(daemon_remote, tmp_path, "c0").sync_one(REPO).version_id == v2
    for i, ref in enumerate(("release", "v1", "v1-annotated", "refs/heads/release")):
        ws = make_ws(daemon_remote, tmp_path, f"c{i + 1}", ref=ref)
        assert ws.sync_one(REPO).version_id == v1, ref


def test_unknown_commit_fails_without_fetching_history(
    daemon_remote: GitRemote, tmp_path: Path
) -> None:
    seed(daemon_remote, BASE)
    ws = make_ws(daemon_remote, tmp_path, ref="0123456789" * 4)
    with pytest.raises(VersionUnavailableError, match="does not seem to have commit 0123456789"):
        ws.sync_one(REPO)
    assert pack_objects(ws) == 0  # no deepening: a v2 server would have sent it by id


def test_unknown_ref_names_it(daemon_remote: GitRemote, tmp_path: Path) -> None:
    seed(daemon_remote, BASE)
    with pytest.raises(RemoteNotFoundError, match="'no-such-branch'"):
        make_ws(daemon_remote, tmp_path, ref="no-such-branch").sync_one(REPO)
    with pytest.raises(RemoteNotFoundError, match="40 hex digits"):
        make_ws(daemon_remote, tmp_path, "c2", ref="abcdef12").sync_one(REPO)


def test_deleted_ref_keeps_serving_and_recovers(daemon_remote: GitRemote, tmp_path: Path) -> None:
    seed(daemon_remote, BASE)
    daemon_remote.push_branch("feature")
    ws = make_ws(daemon_remote, tmp_path, ref="feature")
    good = ws.sync_one(REPO)
    daemon_remote.delete_branch("feature")
    with pytest.raises(RemoteNotFoundError, match="'feature'"):
        ws.sync_one(REPO)
    assert ws.cache.current_id(REPO) == good.version_id
    assert tree_files(ws.path(REPO)) == BASE
    assert ws.status()[0].last_error is not None
    seed(daemon_remote, {"dag_a.py": b"# back\n"})
    daemon_remote.push_branch("feature")
    assert ws.sync_one(REPO).changed
    assert ws.status()[0].last_error is None


def test_missing_subdir_is_named(daemon_remote: GitRemote, tmp_path: Path) -> None:
    seed(daemon_remote, BASE)
    with pytest.raises(RemoteNotFoundError, match="no folder 'dags/prod'"):
        make_ws(daemon_remote, tmp_path, subdir="dags/prod").sync_one(REPO)


def test_bad_options_name_the_field(daemon_remote: GitRemote, tmp_path: Path) -> None:
    for options, field in (({"depth": -1}, "depth"), ({"lfs": "fetch"}, "lfs"),
                           ({"shallow": True}, "shallow")):
        ws = make_ws(daemon_remote, tmp_path, options=options)
        with pytest.raises(ManifestError) as caught:
            ws.validate()
        # the option itself, not the url: `dag_repositories.<id>.options.<name>: ...`
        assert caught.value.field == f"dag_repositories.{REPO}.options.{field}"
        assert str(caught.value).startswith(f"dag_repositories.{REPO}.options.{field}: ")


# -- the tree ------------------------------------------------------------------------------------


def test_symlinks_inside_the_tree_are_kept(daemon_remote: GitRemote, tmp_path: Path) -> None:
    seed(daemon_remote, BASE)
    daemon_remote.symlink("dags/util.py", "../lib/util.py")
    daemon_remote.push()
    ws = make_ws(daemon_remote, tmp_path)
    ws.sync_one(REPO)
    link = ws.path(REPO) / "dags/util.py"
    assert link.is_symlink() and str(link.readlink()) == "../lib/util.py"
    assert link.read_bytes() == BASE["lib/util.py"]


def _add_submodule(remote: GitRemote, path: str) -> str:
    sha = remote.head()
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=remote.work)
    git("commit", "-q", "-m", "submodule", cwd=remote.work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=remote.work)
    return sha


def test_submodules_are_refused_by_name_or_skipped_on_request(
    daemon_remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(daemon_remote, BASE)
    _add_submodule(daemon_remote, "vendor/shared")
    with pytest.raises(FetchError, match="'vendor/shared' is a git submodule"):
        make_ws(daemon_remote, tmp_path).sync_one(REPO)
    ws = make_ws(daemon_remote, tmp_path, "c2", options={"submodules": "skip"})
    with caplog.at_level(logging.WARNING):
        ws.sync_one(REPO)
    assert tree_files(ws.path(REPO)) == BASE
    assert "vendor/shared" in caplog.text


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               b"size 12345\n")


def test_lfs_pointer_files_are_reported(
    daemon_remote: GitRemote, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(daemon_remote, {**BASE, "data/model.bin": LFS_POINTER})
    with pytest.raises(FetchError, match=r"LFS pointer file\(s\) \('data/model.bin'\)"):
        make_ws(daemon_remote, tmp_path).sync_one(REPO)
    skip = make_ws(daemon_remote, tmp_path, "c2", options={"lfs": "skip"})
    warn = make_ws(daemon_remote, tmp_path, "c3", options={"lfs": "warn"})
    with caplog.at_level(logging.WARNING):
        skip.sync_one(REPO)
        warn.sync_one(REPO)
    assert tree_files(skip.path(REPO)) == BASE
    assert tree_files(warn.path(REPO))["data/model.bin"] == LFS_POINTER
    assert caplog.text.count("data/model.bin") >= 2
