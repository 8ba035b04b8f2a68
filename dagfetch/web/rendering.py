"""Turning documents into HTML: the Jinja environment (autoescape on, undefined names are
errors), its filters, syntax highlighting with Pygments, the nested file tree, side-by-side
rows of a diff, and the data the DAG picture is drawn from.

Every text that comes from a repository (paths, DAG and task ids, file contents, tracebacks)
reaches the page escaped: by Jinja, by Pygments (which escapes what it highlights), or as
JSON in a ``<script type="application/json">`` block (Jinja's ``tojson`` escapes ``<``,
``>``, ``&`` and quotes, so no content can close the block).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import attrs
import jinja2
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound
from starlette.requests import Request

from dagfetch.web.schemas import DiffHunk, DiffLine, FileEntry, GraphDiffInfo, GraphInfo

#: Bytes of a file highlighted; a larger text file is shown plain (Pygments is slow on it).
MAX_HIGHLIGHTED = 256 * 1024
LIGHT_STYLE, DARK_STYLE = "friendly", "github-dark"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dagfetch.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, age=age, short=short, size=size, q=quote_segment,
                       qpath=quote_path)
    return env


def url(request: Request, path: str) -> str:
    """``path`` (already quoted) under the root path the app is served at."""
    return str(request.scope.get("root_path", "")) + path


def quote_segment(value: object) -> str:
    """One URL path segment: ``/`` and everything else special is escaped."""
    return quote(str(value), safe="")


def quote_path(value: object) -> str:
    """A file path in a URL: its ``/`` stay separators."""
    return quote(str(value), safe="/")


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def age(seconds: float | None) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``2 days``: how long ago, roughly."""
    if seconds is None:
        return "-"
    for unit, length in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length * (2 if unit == "days" else 1):
            return f"{math.floor(seconds / length)} {unit}"
    return f"{math.floor(seconds)} s"


def short(version_id: str | None, length: int = 12) -> str:
    return "-" if version_id is None else version_id[:length]


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


# -- code --------------------------------------------------------------------------------------

def highlighted(path: str, text: str) -> str | None:
    """The file as highlighted HTML with line anchors (``#L-12``), or None when it is too
    large to highlight (the page then shows it plain, escaped)."""
    if len(text) > MAX_HIGHLIGHTED:
        return None
    lexer: Lexer
    try:
        lexer = get_lexer_for_filename(path, text)
    except ClassNotFound:
        lexer = TextLexer()
    formatter = HtmlFormatter(linenos="table", lineanchors="L", anchorlinenos=True,
                              cssclass="highlight", wrapcode=True)
    html: str = highlight(text, lexer, formatter)
    return html


def code_css() -> str:
    """Pygments' colours for the light theme, and for the dark one under
    ``prefers-color-scheme: dark``."""
    # the stubs leave get_style_defs untyped; it returns the CSS text
    light = HtmlFormatter(style=LIGHT_STYLE).get_style_defs(".highlight")  # type: ignore[no-untyped-call]
    dark = HtmlFormatter(style=DARK_STYLE).get_style_defs(".highlight")  # type: ignore[no-untyped-call]
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


@attrs.frozen
class TreeNode:
    """A folder of a version's tree (``files`` directly in it, ``folders`` below it)."""

    name: str
    path: str
    folders: tuple[TreeNode, ...]
    files: tuple[FileEntry, ...]


def file_tree(files: Iterable[FileEntry]) -> TreeNode:
    """The nested folders of a flat, sorted list of files."""
    root: dict[str, Any] = {"folders": {}, "files": []}
    for entry in files:
        node = root
        for part in entry.path.split("/")[:-1]:
            node = node["folders"].setdefault(part, {"folders": {}, "files": []})
        node["files"].append(entry)

    def build(name: str, path: str, node: dict[str, Any]) -> TreeNode:
        folders = tuple(build(child, f"{path}{child}/", node["folders"][child])
                        for child in sorted(node["folders"]))
        return TreeNode(name, path, folders, tuple(node["files"]))

    return build("", "", root)


@attrs.frozen
class SideBySideRow:
    """One row of a side-by-side diff: the old line on the left, the new one on the right
    (either may be missing)."""

    old: DiffLine | None
    new: DiffLine | None


def side_by_side(hunk: DiffHunk) -> list[SideBySideRow]:
    """Context lines on both sides; each run of deleted lines beside the added lines that
    replace it."""
    rows: list[SideBySideRow] = []
    deleted: list[DiffLine] = []
    added: list[DiffLine] = []

    def flush() -> None:
        for index in range(max(len(deleted), len(added))):
            rows.append(SideBySideRow(deleted[index] if index < len(deleted) else None,
                                      added[index] if index < len(added) else None))
        deleted.clear()
        added.clear()

    for line in hunk.lines:
        if line.kind == "context":
            flush()
            rows.append(SideBySideRow(line, line))
        elif line.kind == "deleted":
            if added:
                flush()
            deleted.append(line)
        else:
            added.append(line)
    flush()
    return rows


# -- the DAG picture ---------------------------------------------------------------------------

def picture_data(shown: GraphInfo, other: GraphInfo | None = None,
                 change: GraphDiffInfo | None = None) -> dict[str, Any]:
    """What ``graph.js`` draws: the shown version's tasks and edges; with a diff, also the
    other version's removed tasks and edges, each marked ``added``, ``removed``,
    ``changed`` or ``same``."""
    nodes = [{"id": task.task_id, "kind": task.kind or "", "mark": "same"}
             for task in shown.tasks]
    edges = [{"from": e.upstream, "to": e.downstream, "mark": "same"} for e in shown.edges]
    if change is not None and other is not None:
        added, changed = set(change.tasks_added), set(change.tasks_changed)
        for node in nodes:
            node["mark"] = ("added" if node["id"] in added
                            else "changed" if node["id"] in changed else "same")
        new_edges = {(e.upstream, e.downstream) for e in change.edges_added}
        for edge in edges:
            if (edge["from"], edge["to"]) in new_edges:
                edge["mark"] = "added"
        kinds = {task.task_id: task.kind or "" for task in other.tasks}
        nodes += [{"id": task_id, "kind": kinds.get(task_id, ""), "mark": "removed"}
                  for task_id in change.tasks_removed]
        edges += [{"from": e.upstream, "to": e.downstream, "mark": "removed"}
                  for e in change.edges_removed]
    return {"dag_id": shown.dag_id, "version": shown.version.number, "nodes": nodes,
            "edges": edges}


def marks_by_task(change: GraphDiffInfo | None) -> dict[str, str]:
    """Task id -> ``added``/``removed``/``changed``, for the tasks table."""
    if change is None:
        return {}
    marks = {task_id: "added" for task_id in change.tasks_added}
    marks.update({task_id: "removed" for task_id in change.tasks_removed})
    marks.update({task_id: "changed" for task_id in change.tasks_changed})
    return marks


def page_links(total: int, limit: int, offset: int) -> Sequence[tuple[str, int]]:
    """(label, offset) of the previous and next pages, where there are some."""
    links = []
    if offset > 0:
        links.append(("previous", max(0, offset - limit)))
    if offset + limit < total:
        links.append(("next", offset + limit))
    return links
