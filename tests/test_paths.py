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
    from dagfetch.selection import select_files

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


@pytest.mark.parametrize(
    ("path", "shown"),
    [("evil\x7f.py", "U+007F"), ("evil\x85.py", "U+0085"), ("evil\x9b.py", "U+009B"),
     ("report\u202eyp.txt", "U+202E"), ("a\u202ab.py", "U+202A"), ("a\u2066b.py", "U+2066"),
     ("a\u2069b.py", "U+2069"), ("a\u200fb.py", "U+200F")],
)
def test_names_a_reviewer_cannot_see_are_refused(path: str, shown: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_relpath(path)
    assert shown in str(caught.value) and caught.value.path == path


@pytest.mark.parametrize("target", ["ok.py\x00/etc/passwd", "a\x7fb", "x\u202ey"])
def test_control_characters_in_a_link_target_are_refused(target: str) -> None:
    with pytest.raises(UnsafePathError, match="in the symlink's target") as caught:
        safe_link_target("link", target)
    assert caught.value.path == "link"


@pytest.mark.parametrize(
    "paths", [["A.py", "a.py"], ["caf\u00e9.py", "cafe\u0301.py"], ["Lib/x.py", "lib/y.py"],
              ["STRASSE.py", "stra\u00dfe.py"]],
)
def test_case_and_normalization_twins_are_refused_naming_both(paths: list[str]) -> None:
    from dagfetch.paths import check_no_twins

    with pytest.raises(UnsafePathError, match="differ only by case") as caught:
        check_no_twins(paths)
    assert paths[1] in str(caught.value)


def test_distinct_names_are_not_twins() -> None:
    from dagfetch.paths import check_no_twins

    check_no_twins(["a.py", "b.py", "lib/a.py", "lib2/a.py", "caf\u00e9.py"])


def test_a_name_longer_than_file_systems_take_is_refused() -> None:
    safe_relpath("d/" + "n" * 255)
    with pytest.raises(UnsafePathError, match="256 bytes"):
        safe_relpath("d/" + "n" * 256)
