"""A graph as text for people, JSON for programs, Graphviz ``dot`` and Mermaid for pictures."""

from __future__ import annotations

import json
from typing import Any

from dagfetch.graphs.model import Graph, GraphDiff, GraphVersion

FORMATS = ("text", "json", "dot", "mermaid")


def render(graph: Graph, version: GraphVersion | None, fmt: str) -> str:
    if fmt == "json":
        data: dict[str, Any] = graph.to_json()
        if version is not None:
            data["version"] = version.to_json()
        return json.dumps(data, indent=2, sort_keys=True)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "text":
        return to_text(graph, version)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def to_text(graph: Graph, version: GraphVersion | None = None) -> str:
    lines = []
    if version is not None:
        latest = " (latest)" if version.latest else ""
        lines.append(f"{graph.dag_id}  version {version.number}{latest}  "
                     f"{len(graph.tasks)} tasks, {len(graph.edges)} edges  "
                     f"hash {version.graph_hash[:12]}  "
                     f"recorded {version.created_at:%Y-%m-%d %H:%M:%S}Z")
    else:
        lines.append(graph.dag_id)
    for task in graph.tasks:
        kind = f" [{task.kind}]" if task.kind else ""
        downstream = graph.downstream(task.task_id)
        arrow = f" -> {', '.join(downstream)}" if downstream else ""
        lines.append(f"  {task.task_id}{kind}{arrow}")
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph) -> str:
    lines = [f"digraph {_dot_quote(graph.dag_id)} {{", "  rankdir=LR;"]
    for task in graph.tasks:
        label = f"{task.task_id}\\n{task.kind}" if task.kind else task.task_id
        lines.append(f"  {_dot_quote(task.task_id)} [label={_dot_quote(label)}];")
    lines += [f"  {_dot_quote(edge.upstream)} -> {_dot_quote(edge.downstream)};"
              for edge in graph.edges]
    lines.append("}")
    return "\n".join(lines)


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    # task ids may hold characters Mermaid reads as syntax: nodes get safe ids, ids go in labels
    node_ids = {task.task_id: f"t{index}" for index, task in enumerate(graph.tasks)}
    lines = ["flowchart LR"]
    lines += [f'  {node_ids[task.task_id]}["{_mermaid_label(task.task_id)}"]'
              for task in graph.tasks]
    lines += [f"  {node_ids[edge.upstream]} --> {node_ids[edge.downstream]}"
              for edge in graph.edges]
    return "\n".join(lines)


def diff_text(dag_id: str, old: int, new: int, changes: GraphDiff) -> str:
    if changes.empty:
        return f"{dag_id}: versions {old} and {new} have the same graph"
    lines = [f"{dag_id}: version {old} -> {new}"]
    lines += [f"  + task {task_id}" for task_id in changes.tasks_added]
    lines += [f"  - task {task_id}" for task_id in changes.tasks_removed]
    lines += [f"  ~ task {task_id}" for task_id in changes.tasks_changed]
    lines += [f"  + edge {edge.upstream} -> {edge.downstream}" for edge in changes.edges_added]
    lines += [f"  - edge {edge.upstream} -> {edge.downstream}" for edge in changes.edges_removed]
    return "\n".join(lines)
