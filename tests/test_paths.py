from __future__ import annotations

import pytest

from dagfetch.errors import UnsafePathError
from dagfetch.paths import safe_link_target, safe_relpath


@pytest.mark.parametrize(
    ("path", "clean"),
    [("a.py", "a.py"), ("./a/b.py", "a/b.py"), ("a//b.py", "a/b.py"), ("a/./b", "a/b")],
)
def test_clean_paths(path: str, clean: str) -> None:
    assert safe_relpath(path) == clean


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty"),
        ("../x.py", "'..'"),
        ("a/../../x.py", "'..'"),
        ("a/..", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:evil.py", "absolute"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "control"),
        (".", "root"),
    ],
)
def test_escaping_paths_are_refused_by_name(path: str, why: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_relpath(path)
    assert why in str(caught.value)
    assert repr(path) in str(caught.value)


@pytest.mark.parametrize(("link", "target"), [("a", "b"), ("d/a", "../b"), ("d/e/a", "../f/g")])
def test_links_inside_the_tree(link: str, target: str) -> None:
    assert safe_link_target(link, target) == target


@pytest.mark.parametrize(
    ("link", "target"), [("a", "../b"), ("d/a", "../../b"), ("a", "/etc"), ("a", ""), ("d/a", "..")]
)
def test_links_out_of_the_tree(link: str, target: str) -> None:
    with pytest.raises(UnsafePathError, match="outside the repository"):
        safe_link_target(link, target)


def test_symlink_chains_that_leave_the_tree_are_refused() -> None:
    from dagfetch.manifest import parse_manifest
    from dagfetch.models import Listing, RemoteFile
    from dagfetch.sync import select_files

    spec = parse_manifest({"dag_repositories": {"r": {"url": "memory://x"}}}).get("r")

    def link(path: str, target: str) -> RemoteFile:
        return RemoteFile(path, 0, f"link:{target}", kind="symlink", target=target)

    # each link's own text stays inside; followed together they climb out
    chain = Listing.of([link("a/b/s", ".."), link("a/b/l", "s/../.."), RemoteFile("x.py", 1, "t")])
    with pytest.raises(UnsafePathError, match="through another symlink") as caught:
        select_files(chain, spec)
    assert "a/b/l" in str(caught.value)
    # links to files and to folders that are not links are fine
    fine = Listing.of([link("a/b/s", ".."), link("a/b/t", "../x.py"), RemoteFile("x.py", 1, "t")])
    assert [f.path for f in select_files(fine, spec)] == ["a/b/s", "a/b/t", "x.py"]
