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
