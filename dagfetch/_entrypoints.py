"""One place that reads entry points and distribution metadata, read straight from the
installed distributions' metadata folders.

Every command reads entry points (the registry's ``dagfetch.fetchers``, the URL forms) on
its way to its first fetch, so this is start-up time. ``importlib.metadata`` (and its
backport) answers by importing ``email``'s header parser, ``zipfile`` and ``csv`` and parsing
every matching distribution's ``METADATA`` in full; what dagfetch needs is smaller: the
``entry_points.txt`` of each ``*.dist-info`` / ``*.egg-info`` folder on ``sys.path``, and the
name, version and ``Requires-Dist`` lines from the head of one metadata file per distribution
that declares a dagfetch entry point. Those are read here with the standard library alone.
A distribution found twice on ``sys.path`` (editable and site) counts once, the first, as
``importlib.metadata`` does; a zip file on ``sys.path`` is read through
``importlib.metadata``.

:func:`unmet_requirements` answers "is what this entry point needs installed?" from metadata
alone, before anything is imported: an entry point may name the extras of its distribution
it needs (``s3 = "dagfetch.backends.fsspec:FsspecFetcher [s3]"``, standard entry-point
syntax), and each requirement of those extras is looked up among the installed
distributions. A distribution counts as installed by name; whether its version fits is
pip's business, and an import that fails anyway is reported by the caller. The usual marker
``extra == "name"`` is read here; any other marker naming an extra is evaluated by
``packaging``, imported only then.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "Distribution",
    "EntryPoint",
    "PackageNotFoundError",
    "distribution_of",
    "entry_points",
    "install_hint",
    "unmet_requirements",
]


class PackageNotFoundError(ModuleNotFoundError):
    """No installed distribution has this name."""

    def __str__(self) -> str:
        return f"No package metadata was found for {self.name}"


class Distribution:
    """An installed distribution, by its metadata folder; the head of its metadata file
    (name, version, requirements) is read on first use and never its long description."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._head: dict[str, list[str]] | None = None

    @property
    def _stem(self) -> list[str]:
        """``name-version`` of the folder, split (``zope.interface-5.0.dist-info``,
        ``name.egg-info``)."""
        name = self.path.name
        for suffix in _METADATA_SUFFIXES:
            name = name.removesuffix(suffix)
        return name.split("-")

    @property
    def normalized_name(self) -> str:
        return _norm(self._stem[0])

    def _field(self, name: str) -> list[str]:
        if self._head is None:
            self._head = _read_head(self.path)
        return self._head.get(name.lower(), [])

    @property
    def name(self) -> str:
        return next(iter(self._field("Name")), self.normalized_name)

    @property
    def version(self) -> str:
        given = self._field("Version")
        if given:
            return given[0]
        parts = self._stem
        return parts[1] if len(parts) > 1 else ""

    @property
    def requires(self) -> list[str]:
        """The ``Requires-Dist`` lines (``requires.txt`` of an egg-info is not read)."""
        return self._field("Requires-Dist")

    def entry_points_text(self) -> str:
        # read for every installed distribution by every command, most of them without one:
        # plain system calls, at a third of the cost of an io text file per distribution
        try:
            fd = os.open(os.path.join(self.path, "entry_points.txt"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ""
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError:
            return ""
        finally:
            os.close(fd)
        return b"".join(chunks).decode("utf-8", "replace")


class EntryPoint:
    """One entry point: ``name = module:attr [extra, ...]`` in ``group``."""

    def __init__(self, name: str, value: str, group: str,
                 dist: Distribution | None = None) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    @property
    def extras(self) -> list[str]:
        match = re.search(r"\[(.*)\]\s*$", self.value)
        return [e.strip() for e in match.group(1).split(",") if e.strip()] if match else []

    def load(self) -> Any:
        """Import the module and return the named object."""
        reference = self.value.split("[", 1)[0].strip()
        module_name, _, attr = reference.partition(":")
        found: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            found = getattr(found, part)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of every installed distribution, in ``sys.path`` order."""
    return [EntryPoint(name, value, group, dist)
            for dist in _installed().values()
            for name, value in _parse_entry_points(dist.entry_points_text(), group)]


def distribution_of(ep: EntryPoint) -> tuple[str, str]:
    """(name, version) of the distribution that declared ``ep``."""
    dist = ep.dist
    if dist is None:
        return ("<unknown>", "")
    return (dist.name, dist.version)


def install_hint(distribution: str, extras: tuple[str, ...] | list[str]) -> str:
    """The pip command installing ``distribution`` with ``extras``."""
    return f"pip install '{distribution}[{','.join(extras)}]'"


def unmet_requirements(ep: EntryPoint) -> list[tuple[str, PackageNotFoundError]]:
    """Requirements of the extras ``ep`` names that no installed distribution meets, each
    with the lookup error (``name>=version``); empty when it names none or all are there.
    Extras of a required distribution (``moto[server]``) are followed, each once."""
    dist = ep.dist
    extras = ep.extras
    if dist is None or not extras:
        return []
    unmet: list[tuple[str, PackageNotFoundError]] = []
    seen: set[tuple[str, str]] = set()

    def visit(requires: list[str], wanted: list[str]) -> None:
        for text in requires:
            parsed = _pulled_in(text, wanted)
            if parsed is None:
                continue
            name, req_extras, short = parsed
            key = (_norm(name), ",".join(req_extras))
            if key in seen:
                continue
            seen.add(key)
            try:
                found = _distribution(name)
            except PackageNotFoundError as exc:
                unmet.append((short, exc))
                continue
            if req_extras:
                visit(found.requires, req_extras)

    visit(dist.requires, extras)
    return unmet


def _distribution(name: str) -> Distribution:
    """The installed distribution called ``name`` (any spelling: ``-``, ``_`` or ``.``)."""
    found = _installed().get(_norm(name))
    if found is None:
        raise PackageNotFoundError(name)
    return found


# -- requirements ---------------------------------------------------------------------------

# name, [extras], specifier, ; marker
_REQUIREMENT = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;(.*))?$")
_ONLY_EXTRA = re.compile(r"""^\s*extra\s*==\s*(['"])([^'"]+)\1\s*$""")


def _pulled_in(text: str, extras: list[str]) -> tuple[str, list[str], str] | None:
    """``(name, its extras, name[extras]specifier)`` when the ``Requires-Dist`` line is pulled
    in by one of ``extras`` here (on this Python and platform), and not by the distribution
    itself: a base requirement was installed with it. None otherwise."""
    match = _REQUIREMENT.match(text)
    marker = match.group(4) if match else None
    if match is None or (marker is not None and "extra" in marker
                         and not _ONLY_EXTRA.match(marker)):
        return _pulled_in_by_packaging(text, extras)
    if marker is None or "extra" not in marker:
        return None
    only = _ONLY_EXTRA.match(marker)
    assert only is not None
    if _norm(only.group(2)) not in {_norm(e) for e in extras}:
        return None
    name, bracket, specifier = match.group(1), match.group(2), match.group(3)
    req_extras = sorted(e.strip() for e in (bracket or "[]")[1:-1].split(",") if e.strip())
    spelled = f"[{','.join(req_extras)}]" if req_extras else ""
    return name, req_extras, name + spelled + re.sub(r"[()\s]", "", specifier)


def _pulled_in_by_packaging(text: str, extras: list[str]) -> tuple[str, list[str], str] | None:
    """:func:`_pulled_in` for a marker beyond ``extra == "name"``, through ``packaging``."""
    from packaging.markers import UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None  # not ours to judge; the import will tell
    marker = requirement.marker
    if marker is None:
        return None
    try:
        if marker.evaluate({"extra": ""}):
            return None
        if not any(marker.evaluate({"extra": extra}) for extra in extras):
            return None
    except UndefinedEnvironmentName:  # pragma: no cover - a marker naming an unknown variable
        return None
    return requirement.name, sorted(requirement.extras), _short(requirement)


def _short(requirement: Requirement) -> str:
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"


# -- reading metadata folders ---------------------------------------------------------------

_METADATA_SUFFIXES = (".dist-info", ".egg-info")

# (sys.path, each entry's mtime) -> normalized name -> distribution, for the last sys.path
_index: tuple[tuple[tuple[str, int], ...], dict[str, Distribution]] | None = None


def _installed() -> dict[str, Distribution]:
    """Normalized name -> the first distribution of that name on ``sys.path``. Read again
    when ``sys.path`` or the mtime of one of its folders changed (pip creates and removes
    metadata folders, which changes their parent's mtime)."""
    global _index
    key = tuple(_stamp(entry) for entry in sys.path)
    if _index is not None and _index[0] == key:
        return _index[1]
    found: dict[str, Distribution] = {}
    for entry, mtime in key:
        if mtime >= 0:
            for dist in _distributions_in(entry):
                found.setdefault(dist.normalized_name, dist)
    _index = (key, found)
    return found


def _stamp(entry: str) -> tuple[str, int]:
    try:
        return entry, os.stat(entry or ".").st_mtime_ns
    except OSError:
        return entry, -1


def _distributions_in(entry: str) -> Iterator[Distribution]:
    folder = entry or "."
    if not os.path.isdir(folder):
        if os.path.isfile(folder):  # a zip file: rare enough to pay for importlib.metadata
            if sys.version_info >= (3, 12):
                from importlib.metadata import distributions
            else:
                from importlib_metadata import distributions
            yield from (_ZippedDistribution(d) for d in distributions(path=[folder]))
        return
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        if name.endswith(_METADATA_SUFFIXES):
            yield Distribution(Path(folder, name))


def _read_head(folder: Path) -> dict[str, list[str]]:
    """The header fields of ``METADATA`` (``PKG-INFO`` of an egg-info), up to the first
    blank line: the long description that follows is never read."""
    fields: dict[str, list[str]] = {}
    for file_name in ("METADATA", "PKG-INFO"):
        try:
            handle = open(folder / file_name, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with handle:
            last: str | None = None
            for line in handle:
                if not line.strip():
                    break
                if line[0] in " \t" and last is not None:  # a folded continuation line
                    fields[last][-1] += " " + line.strip()
                    continue
                key, sep, value = line.partition(":")
                if sep:
                    last = key.strip().lower()
                    fields.setdefault(last, []).append(value.strip())
        break
    return fields


def _parse_entry_points(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of ``group`` in an ``entry_points.txt`` (INI: ``[group]`` sections of
    ``name = value`` lines; ``#`` and ``;`` start comments)."""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside:
            name, sep, value = line.partition("=")
            if sep:
                yield name.strip(), value.strip()


class _ZippedDistribution(Distribution):
    """A distribution inside a zip file on sys.path, read through ``importlib.metadata``."""

    def __init__(self, dist: Any) -> None:
        super().__init__(Path(str(getattr(dist, "_path", "zipped"))))
        self._dist = dist

    @property
    def normalized_name(self) -> str:
        return _norm(self.name)

    def _field(self, name: str) -> list[str]:
        return list(self._dist.metadata.get_all(name) or [])

    def entry_points_text(self) -> str:
        return str(self._dist.read_text("entry_points.txt") or "")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

