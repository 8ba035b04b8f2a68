"""Git trees that git porcelain refuses to make, built object by object and served by a real
git daemon: one name twice in a tree (a symlink ``a`` then a tree ``a/``), trees thousands
of folders deep, a tiny repository of shared trees describing 10^12 files, and names and
link targets a reviewer cannot see."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import time
import uuid
import zlib
from pathlib import Path

import pytest

from dagfetch.errors import LimitExceeded, UnsafePathError
from dagfetch.testing import one_repository
from dagfetch.workspace import Workspace
from tests.servers.git import GitServers

FILE, LINK, TREE = 0o100644, 0o120000, 0o40000


class RawRepo:
    """A bare repository written as loose objects, so a tree holds exactly the entries
    given, in the order given (dulwich's Tree and git's porcelain both refuse or merge
    duplicates)."""

    def __init__(self, root: Path) -> None:
        self.name = f"raw-{uuid.uuid4().hex[:10]}.git"
        self.path = root / self.name
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.path)], check=True)

    def put(self, kind: str, body: bytes) -> str:
        data = f"{kind} {len(body)}\0".encode() + body
        sha = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        target = self.path / "objects" / sha[:2] / sha[2:]
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            target.write_bytes(zlib.compress(data))
        return sha

    def blob(self, data: bytes) -> str:
        return self.put("blob", data)

    def tree(self, entries: list[tuple[int, bytes, str]]) -> str:
        body = b"".join(f"{mode:o} ".encode() + name + b"\0" + bytes.fromhex(sha)
                        for mode, name, sha in entries)
        return self.put("tree", body)

    def commit(self, tree: str) -> str:
        body = (f"tree {tree}\nauthor t <t@e> 1700000000 +0000\n"
                f"committer t <t@e> 1700000000 +0000\n\nraw\n").encode()
        sha = self.put("commit", body)
        (self.path / "refs" / "heads" / "main").write_text(sha + "\n")
        return sha


@pytest.fixture
def raw(git_servers: GitServers) -> RawRepo:
    return RawRepo(git_servers.root)


def workspace(
    git_servers: GitServers, repo: RawRepo, tmp_path: Path, **fields: object
) -> Workspace:
    return one_repository(git_servers.daemon.url(repo.name), tmp_path, **fields)


def test_a_symlink_and_a_tree_of_one_name_are_refused(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path
) -> None:
    """git fsck's duplicateEntries: a symlink ``a`` to /etc, then a tree ``a`` holding
    evil.py. A reader keeping the last entry publishes a/evil.py and never sees the link."""
    evil = raw.tree([(FILE, b"evil.py", raw.blob(b"import os\n"))])
    root = raw.tree([(FILE, b"ok.py", raw.blob(b"ok\n")), (LINK, b"a", raw.blob(b"/etc")),
                     (TREE, b"a", evil)])
    raw.commit(root)
    ws = workspace(git_servers, raw, tmp_path)
    with pytest.raises(UnsafePathError, match="twice") as caught:
        ws.sync_one("r")
    assert caught.value.path == "a"
    assert ws.cache.current_id("r") is None


def test_a_file_written_twice_in_one_tree_is_refused(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path
) -> None:
    root = raw.tree([(FILE, b"dag.py", raw.blob(b"one\n")), (FILE, b"dag.py", raw.blob(b"two\n"))])
    raw.commit(root)
    with pytest.raises(UnsafePathError, match="duplicateEntries"):
        workspace(git_servers, raw, tmp_path).sync_one("r")


def test_a_tree_thousands_deep_fails_on_the_depth_limit_not_recursion(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path
) -> None:
    tree = raw.tree([(FILE, b"leaf.py", raw.blob(b"x\n"))])
    for _ in range(3000):  # past Python's recursion limit, inside git's maxTreeDepth
        tree = raw.tree([(TREE, b"d", tree)])
    raw.commit(tree)
    ws = workspace(git_servers, raw, tmp_path)
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    assert caught.value.field == "dag_repositories.r.limits.max_path_depth"
    assert caught.value.path.startswith("d/d/d/")


def test_shared_trees_describing_a_trillion_files_fail_fast_on_max_files(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path
) -> None:
    """Four trees of 1,000 entries each, every entry of a level naming the same tree below:
    a few KB on the wire, 10^12 files once walked."""
    tree = raw.tree([(FILE, f"f{i:03}.py".encode(), raw.blob(b"x\n")) for i in range(1000)])
    for _ in range(3):
        tree = raw.tree([(TREE, f"d{i:03}".encode(), tree) for i in range(1000)])
    raw.commit(tree)
    packed = sum(f.stat().st_size for f in (raw.path / "objects").rglob("*") if f.is_file())
    assert packed < 200_000
    ws = workspace(git_servers, raw, tmp_path)
    started = time.process_time()
    with pytest.raises(LimitExceeded) as caught:
        ws.sync_one("r")
    print(f"refused 10^12 files after {time.process_time() - started:.2f} s of CPU")
    assert caught.value.field == "dag_repositories.r.limits.max_files"
    assert "max_files = 200000" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "why"),
    [(b"evil\x7f.py", "U+007F"), (b"evil\xc2\x85.py", "U+0085"),
     ("report\u202eyp.txt".encode(), "U+202E"), ("a\u2066b.py".encode(), "U+2066")],
)
def test_names_a_reviewer_cannot_see_are_refused(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path, name: bytes, why: str
) -> None:
    raw.commit(raw.tree([(FILE, name, raw.blob(b"x\n"))]))
    with pytest.raises(UnsafePathError, match=re.escape(why)) as caught:
        workspace(git_servers, raw, tmp_path).sync_one("r")
    assert caught.value.path == name.decode()


def test_a_nul_in_a_symlink_target_is_refused_naming_the_link(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path
) -> None:
    raw.commit(raw.tree([(LINK, b"link", raw.blob(b"ok.py\x00/etc/passwd")),
                         (FILE, b"ok.py", raw.blob(b"x\n"))]))
    with pytest.raises(UnsafePathError, match="U\\+0000") as caught:
        workspace(git_servers, raw, tmp_path).sync_one("r")
    assert caught.value.path == "link"


@pytest.mark.parametrize(
    "names", [(b"A.py", b"a.py"), ("caf\u00e9.py".encode(), "cafe\u0301.py".encode()),
              (b"Lib/x.py", b"lib/y.py")],
)
def test_case_and_normalization_twins_are_refused_by_default(
    git_servers: GitServers, raw: RawRepo, tmp_path: Path, names: tuple[bytes, bytes]
) -> None:
    entries: dict[bytes, list[tuple[int, bytes, str]]] = {}
    for name in names:
        folder, _, leaf = name.rpartition(b"/")
        entries.setdefault(folder, []).append((FILE, leaf, raw.blob(name)))
    top = [e for e in entries.pop(b"", [])]
    top += [(TREE, folder, raw.tree(sorted(items, key=lambda e: e[1])))
            for folder, items in entries.items()]
    raw.commit(raw.tree(sorted(top, key=lambda e: e[1])))
    with pytest.raises(UnsafePathError, match="differ only by case"):
        workspace(git_servers, raw, tmp_path).sync_one("r")
    allowed = workspace(git_servers, raw, tmp_path / "allowed", limits={"name_twins": "allow"})
    allowed.sync_one("r")
    assert len([p for p in allowed.path("r").rglob("*") if p.is_file()]) == 2
    assert os.path.isdir(allowed.path("r"))


def test_a_git_daemon_that_accepts_and_says_nothing_ends_at_read_timeout(
    tmp_path: Path,
) -> None:
    """dulwich's git:// client has no timeout: a silent server held the sync for ever."""
    import socket
    import threading

    from dagfetch.errors import FetchError

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(silent.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        ws = one_repository(f"git://127.0.0.1:{silent.getsockname()[1]}/x.git", tmp_path,
                            limits={"read_timeout": 0.5})
        with pytest.raises(FetchError, match="timed out"):
            ws.sync_one("r")
        assert accepted  # it did connect, and then waited no longer than the limit
    finally:
        silent.close()
        for conn in accepted:
            conn.close()
