"""One place that reads entry points and distribution metadata, so the importlib-metadata
backport is chosen once.

:func:`unmet_requirements` answers "is what this entry point needs installed?" from metadata
alone, before anything is imported: an entry point may name the extras of its distribution
it needs (``s3 = "dagfetch.backends.fsspec:FsspecFetcher [s3]"``, standard entry-point
syntax), and each requirement of those extras is looked up among the installed
distributions. A distribution counts as installed by name; whether its version fits is
pip's business, and an import that fails anyway is reported by the caller.
"""

from __future__ import annotations

import sys
from typing import Any

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 12):
    from importlib.metadata import EntryPoint, PackageNotFoundError
    from importlib.metadata import distribution as _distribution
    from importlib.metadata import entry_points as _entry_points
else:
    from importlib_metadata import EntryPoint, PackageNotFoundError
    from importlib_metadata import distribution as _distribution
    from importlib_metadata import entry_points as _entry_points

__all__ = [
    "EntryPoint",
    "PackageNotFoundError",
    "distribution_of",
    "entry_points",
    "install_hint",
    "unmet_requirements",
]


def entry_points(group: str) -> list[EntryPoint]:
    return list(_entry_points(group=group))


def distribution_of(ep: EntryPoint) -> tuple[str, str]:
    """(name, version) of the distribution that declared ``ep``. Read once per distribution
    (by its metadata folder): parsing a METADATA file is most of what listing dagfetch's
    eighteen entry points costs at start-up."""
    dist: Any = getattr(ep, "dist", None)
    if dist is None:
        return ("<unknown>", "")
    key = str(getattr(dist, "_path", "")) or None
    if key is not None and key in _described:
        return _described[key]
    metadata = dist.metadata
    described = (metadata["Name"] or dist.name, metadata["Version"] or dist.version)
    if key is not None:
        _described[key] = described
    return described


# metadata folder -> (name, version); a distribution upgraded in place keeps its folder name
# only if its version is unchanged (pip renames name-version.dist-info), so this stays right
_described: dict[str, tuple[str, str]] = {}


def install_hint(distribution: str, extras: tuple[str, ...] | list[str]) -> str:
    """The pip command installing ``distribution`` with ``extras``."""
    return f"pip install '{distribution}[{','.join(extras)}]'"


def unmet_requirements(ep: EntryPoint) -> list[tuple[str, PackageNotFoundError]]:
    """Requirements of the extras ``ep`` names that no installed distribution meets, each
    with the lookup error (``name>=version``); empty when it names none or all are there.
    Extras of a required distribution (``moto[server]``) are followed, each once."""
    dist: Any = getattr(ep, "dist", None)
    extras = list(ep.extras)
    if dist is None or not extras:
        return []
    unmet: list[tuple[str, PackageNotFoundError]] = []
    seen: set[tuple[str, str]] = set()

    def visit(requires: list[str] | None, wanted: list[str]) -> None:
        for text in requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # not ours to judge; the import will tell
            if not _belongs_to(requirement, wanted):
                continue
            key = (canonicalize_name(requirement.name), ",".join(sorted(requirement.extras)))
            if key in seen:
                continue
            seen.add(key)
            try:
                found = _distribution(requirement.name)
            except PackageNotFoundError as exc:
                unmet.append((_short(requirement), exc))
                continue
            if requirement.extras:
                visit(found.requires, sorted(requirement.extras))

    visit(dist.requires, extras)
    return unmet


def _belongs_to(requirement: Requirement, extras: list[str]) -> bool:
    """The requirement is pulled in by one of ``extras`` here (on this Python and platform),
    and not by the distribution itself: a base requirement was installed with it."""
    marker = requirement.marker
    if marker is None:
        return False
    try:
        if marker.evaluate({"extra": ""}):
            return False
        return any(marker.evaluate({"extra": extra}) for extra in extras)
    except UndefinedEnvironmentName:  # pragma: no cover - a marker naming an unknown variable
        return False


def _short(requirement: Requirement) -> str:
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"
