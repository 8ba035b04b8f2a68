"""dagfetch.options: one way for every backend to declare and check its ``options`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import pytest

from dagfetch.errors import ManifestError
from dagfetch.options import option, option_specs, parse_options
from dagfetch.protocol import Source

FIELD = "dag_repositories.r.options"


@attrs.frozen
class Example:
    depth: int = option(1, ge=0, help="history to fetch")
    workers: int = option(4, gt=0, le=64, help="parallel workers")
    ratio: float = option(10.0, gt=0, help="a ratio")
    mode: Literal["error", "warn", "skip"] = option("error", help="what to do")
    protocol: int | None = option(None, choices=(0, 1, 2), help="wire protocol")
    timeout: float | None = option(None, gt=0, help="seconds")
    strict: bool = option(False, help="be strict")
    label: str = option("x", help="a label")
    table: Mapping[str, Any] = option({}, help="passed on")


def parse(**values: Any) -> Example:
    return parse_options(Example, values, field=FIELD)


def test_defaults_and_typed_values() -> None:
    assert parse() == Example()
    parsed = parse(depth=0, workers=64, ratio=2, mode="skip", protocol=2, timeout=1.5,
                   strict=True, label="y", table={"a": {"b": 1}})
    assert parsed.ratio == 2.0 and isinstance(parsed.ratio, float)
    assert (parsed.depth, parsed.mode, parsed.protocol, parsed.table) == (0, "skip", 2,
                                                                         {"a": {"b": 1}})
    assert parse(depth=3.0).depth == 3  # a whole float, as JSON may write 1e6
    assert Example().table is not Example().table  # a mutable default is not shared


@pytest.mark.parametrize(
    ("values", "name", "problem"),
    [
        ({"depth": -1}, "depth", "-1 is not a whole number >= 0"),
        ({"depth": "1"}, "depth", "'1' is not a whole number >= 0"),
        ({"depth": True}, "depth", "True is not a whole number >= 0"),
        ({"depth": 1.5}, "depth", "1.5 is not a whole number >= 0"),
        ({"workers": 0}, "workers", "0 is not a positive integer and <= 64"),
        ({"workers": 65}, "workers", "65 is not a positive integer and <= 64"),
        ({"ratio": 0}, "ratio", "0 is not a positive number"),
        ({"mode": "fetch"}, "mode", "'fetch' is not one of 'error', 'warn', 'skip'"),
        ({"protocol": 3}, "protocol", "3 is not one of 0, 1, 2"),
        ({"protocol": True}, "protocol", "True is not one of 0, 1, 2"),  # True == 1 in Python
        ({"timeout": -2}, "timeout", "-2 is not a positive number"),
        ({"strict": "yes"}, "strict", "'yes' is not true or false"),
        ({"label": 5}, "label", "5 is not a string"),
        ({"table": [1]}, "table", "[1] is not a table"),
        ({"strict": None}, "strict", "None is not true or false"),
    ],
)
def test_each_bad_value_names_the_option(values: dict[str, Any], name: str, problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse(**values)
    assert caught.value.field == f"{FIELD}.{name}"
    assert caught.value.problem == problem


def test_none_is_allowed_where_the_type_says_so() -> None:
    assert parse(timeout=None, protocol=None) == Example()


def test_unknown_keys_are_refused_with_the_known_ones_and_a_guess() -> None:
    with pytest.raises(ManifestError) as caught:
        parse(dpeth=1)
    assert caught.value.field == f"{FIELD}.dpeth"
    assert caught.value.problem.startswith("unknown option; did you mean 'depth'? (known: depth,")
    with pytest.raises(ManifestError) as caught:
        parse(zzzzzz=1)
    assert "did you mean" not in caught.value.problem


def test_the_table_itself_must_be_a_table() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_options(Example, [], field=FIELD)
    assert caught.value.field == FIELD


def test_a_required_option() -> None:
    @attrs.frozen
    class Needs:
        optional: int = option(1, help="may be left out")
        bucket: str = option(help="the bucket to read")  # required, after an optional one

    assert parse_options(Needs, {"bucket": "b"}).bucket == "b"
    with pytest.raises(ManifestError, match=r"options\.bucket: missing; the bucket to read"):
        parse_options(Needs, {})
    (optional, bucket) = option_specs(Needs)
    assert not optional.required and bucket.required


def test_specs_describe_the_options_for_docs() -> None:
    specs = {spec.name: spec for spec in option_specs(Example)}
    assert specs["mode"].choices == ("error", "warn", "skip") and specs["mode"].default == "error"
    assert specs["workers"].expected() == "a positive integer and <= 64"
    assert specs["table"].kind == "table" and specs["table"].default == {}
    assert specs["timeout"].nullable and specs["timeout"].help == "seconds"


def test_an_unsupported_annotation_is_a_programming_error() -> None:
    @attrs.frozen
    class Odd:
        pair: tuple[int, int] = option((1, 2), help="not a supported type")

    with pytest.raises(TypeError, match=r"Odd\.pair"):
        parse_options(Odd, {})


def test_source_field_is_the_manifest_path_of_the_repository() -> None:
    source = Source("repo1", "s3://b/d")
    assert source.field == "dag_repositories.repo1"
