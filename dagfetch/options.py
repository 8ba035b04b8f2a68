"""Declaring and checking a backend's ``options`` table, the same way for every backend.

A backend (built in or a plugin) declares its options as an attrs class, one field per
option, each made with :func:`option`::

    @attrs.frozen
    class GitOptions:
        depth: int = option(1, ge=0, help="history fetched with each commit; 0 = all of it")
        lfs: Literal["error", "warn", "skip"] = option("error", help="Git LFS pointer files")

and checks the manifest's table in its constructor, so ``Workspace.validate`` reports a bad
value before anything is fetched::

    options = parse_options(GitOptions, source.options, field=f"{source.field}.options")

Every problem is a :class:`~dagfetch.errors.ManifestError` whose field names the option
(``dag_repositories.<id>.options.<name>``); an unknown key is refused with the known ones
listed, and the closest one suggested when it looks like a typo.

An option's type is its annotation: ``bool``, ``int``, ``float``, ``str``, a ``Literal`` of
allowed values, a table (``Mapping[str, Any]`` or ``dict[str, Any]``), ``Any`` (not checked),
or one of these ``| None``. Annotations are resolved with :func:`typing.get_type_hints`, so
the names they use must be importable at run time in the declaring module. An ``int``
option takes a whole float (``1e6`` in a JSON manifest); ``bool`` is never a number.
"""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import attrs

from dagfetch.errors import ManifestError

__all__ = ["OptionSpec", "option", "option_specs", "parse_options", "unknown_key"]

T = TypeVar("T")

_METADATA_KEY = "dagfetch.option"
_REQUIRED = object()
Kind = Literal["bool", "int", "float", "str", "table", "any"]


@attrs.frozen
class _Declared:
    """What :func:`option` records in the field's metadata."""

    help: str
    ge: float | None
    gt: float | None
    le: float | None
    choices: tuple[Any, ...] | None


@attrs.frozen
class OptionSpec:
    """One declared option, as :func:`option_specs` reports it (for docs and listings)."""

    name: str
    kind: Kind
    default: Any  # attrs.NOTHING when the option is required
    help: str
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    @property
    def required(self) -> bool:
        return self.default is attrs.NOTHING

    def expected(self) -> str:
        """What a valid value is, in words: ``a whole number >= 1``, ``one of 'a', 'b'``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind in ("int", "float"):
            text = self._number()
        elif self.kind == "str":
            text = "a string"
        elif self.kind == "table":
            text = "a table"
        else:
            text = "a value"
        return text

    def _number(self) -> str:
        whole = self.kind == "int"
        if self.gt == 0 and self.ge is None:
            text = "a positive integer" if whole else "a positive number"
        else:
            text = "a whole number" if whole else "a number"
            if self.ge is not None:
                text += f" >= {self.ge:g}"
            if self.gt is not None:
                text += f" > {self.gt:g}"
        if self.le is not None:
            text += f" and <= {self.le:g}"
        return text


def option(
    default: Any = _REQUIRED,
    *,
    help: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | list[Any] | None = None,
) -> Any:
    """An attrs field declaring one option: its default (none: the option is required), a
    line of help, an inclusive (``ge``, ``le``) or exclusive (``gt``) range for numbers, and
    the allowed values (``choices``, or a ``Literal`` annotation). Fields are keyword-only,
    so required and optional options may come in any order."""
    declared = _Declared(help, ge, gt, le, tuple(choices) if choices is not None else None)
    metadata = {_METADATA_KEY: declared}
    if default is _REQUIRED:
        return attrs.field(kw_only=True, metadata=metadata)
    if isinstance(default, (Mapping, list)):
        # a fresh copy per instance: a mutable default must not be shared
        template = default
        return attrs.field(kw_only=True, metadata=metadata, factory=lambda: copy.copy(template))
    return attrs.field(default=default, kw_only=True, metadata=metadata)


def option_specs(cls: type) -> tuple[OptionSpec, ...]:
    """The options ``cls`` declares, in declaration order."""
    return _specs(cls)


@functools.cache
def _specs(cls: type) -> tuple[OptionSpec, ...]:
    hints = typing.get_type_hints(cls)
    specs = []
    for field in attrs.fields(cls):
        declared = field.metadata.get(_METADATA_KEY)
        if declared is None:
            continue  # a field that is not set from the manifest
        where = f"{cls.__name__}.{field.name}"
        kind, nullable, literal = _kind_of(hints.get(field.name, Any), where)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        specs.append(
            OptionSpec(
                name=field.name,
                kind=kind,
                default=default,
                help=declared.help,
                nullable=nullable,
                choices=declared.choices if declared.choices is not None else literal,
                ge=declared.ge,
                gt=declared.gt,
                le=declared.le,
            )
        )
    return tuple(specs)


def parse_options(cls: type[T], values: Any, *, field: str = "options") -> T:
    """Check ``values`` (the manifest's options table) against the options ``cls`` declares
    and return the typed instance. ``field`` is the dotted path of the table
    (``dag_repositories.<id>.options``); every error names ``<field>.<option>``."""
    if not isinstance(values, Mapping):
        raise ManifestError(field, "must be a table of options")
    specs = {spec.name: spec for spec in option_specs(cls)}
    unknown = sorted(str(key) for key in values if key not in specs)
    if unknown:
        raise ManifestError(f"{field}.{unknown[0]}", _unknown(unknown[0], sorted(specs)))
    checked: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in values:
            checked[name] = _check(spec, values[name], f"{field}.{name}")
        elif spec.required:
            raise ManifestError(f"{field}.{name}", f"missing; {spec.help}")
    return cls(**checked)


def _unknown(key: str, known: list[str]) -> str:
    return unknown_key(key, known, "option", listed="known")


def unknown_key(key: str, known: list[str], noun: str = "key", *, listed: str = "allowed") -> str:
    """The problem text for an unknown ``key``: the closest known one when it looks like a
    typo (difflib), and every known one: ``unknown key; did you mean 'url'? (allowed: ...)``.
    The manifest's own keys and the backends' options say it the same way."""
    import difflib  # only for a bad key

    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {noun}{hint} ({listed}: {', '.join(known) or 'none'})"


def _check(spec: OptionSpec, given: Any, field: str) -> Any:
    def bad() -> ManifestError:
        return ManifestError(field, f"{given!r} is not {spec.expected()}")

    value = given
    if value is None:
        if spec.nullable:
            return None
        raise bad()
    if spec.choices is not None:
        # True == 1 in Python: a choice matches only a value of its own type
        if not any(value == c and type(value) is type(c) for c in spec.choices):
            raise bad()
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if spec.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if spec.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise bad()
            value = int(value)
        else:
            value = float(value)
        if (
            (spec.ge is not None and value < spec.ge)
            or (spec.gt is not None and value <= spec.gt)
            or (spec.le is not None and value > spec.le)
        ):
            raise bad()
        return value
    if spec.kind == "str":
        if not isinstance(value, str):
            raise bad()
        return value
    if spec.kind == "table":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise bad()
        return dict(value)
    return value


_KINDS: dict[Any, Kind] = {bool: "bool", int: "int", float: "float", str: "str", Any: "any"}


def _kind_of(annotation: Any, where: str) -> tuple[Kind, bool, tuple[Any, ...] | None]:
    """(kind, accepts None, Literal values) of an option's annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"option {where}: a union of {rest} is not supported")
        kind, _, literal = _kind_of(rest[0], where)
        return kind, True, literal
    if origin is Literal:
        values = typing.get_args(annotation)
        kinds = {_KINDS.get(type(v), "any") for v in values}
        return (kinds.pop() if len(kinds) == 1 else "any"), False, values
    if annotation in _KINDS:
        return _KINDS[annotation], False, None
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return "table", False, None
    if isinstance(annotation, type) and issubclass(annotation, Mapping):
        return "table", False, None
    raise TypeError(f"option {where}: type {annotation!r} is not supported")
