// Draws a DAG's graph as SVG: the tasks and edges of the page's JSON block
// (<script type="application/json" id="graph-data">), laid out by dagre (vendor/dagre,
// @dagrejs/dagre 3.1.3). Task ids come from untrusted repositories: they are only ever
// written as text (textContent) or attribute values (setAttribute), never as markup.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MARKS = ["same", "added", "removed", "changed"];
  // Laying out takes dagre seconds past a few hundred tasks (its crossing minimization), and
  // the page cannot be used meanwhile: larger graphs are drawn when the reader asks.
  const DRAW_AT_ONCE = 400;

  function svg(name, attributes) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      element.setAttribute(key, String(value));
    }
    return element;
  }

  function textWidth(text) {
    const canvas = textWidth.canvas || (textWidth.canvas = document.createElement("canvas"));
    const context = canvas.getContext("2d");
    context.font = "13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    return Math.ceil(context.measureText(text).width);
  }

  function draw(holder, data) {
    const layout = new dagre.graphlib.Graph();
    layout.setGraph({
      rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12,
      // the default ranker (network simplex) is the slow part of a large layout
      ranker: data.nodes.length > DRAW_AT_ONCE ? "longest-path" : "network-simplex",
    });
    layout.setDefaultEdgeLabel(() => ({}));
    for (const node of data.nodes) {
      layout.setNode(node.id, { width: Math.min(textWidth(node.id), 360) + 24, height: 30 });
    }
    for (const edge of data.edges) {
      layout.setEdge(edge.from, edge.to);
    }
    dagre.layout(layout);
    const size = layout.graph();
    const picture = svg("svg", {
      class: "dag", width: Math.ceil(size.width), height: Math.ceil(size.height),
      viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`,
      "data-nodes": data.nodes.length, "data-edges": data.edges.length,
    });
    const title = svg("title");
    title.textContent = `${data.dag_id}, version ${data.version}`;
    picture.appendChild(title);
    const defs = svg("defs");
    for (const mark of MARKS) {
      const arrow = svg("marker", {
        id: `arrow-${mark}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
        markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
      });
      arrow.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: `arrow ${mark}` }));
      defs.appendChild(arrow);
    }
    picture.appendChild(defs);
    const edges = svg("g", { class: "edges" });
    for (const edge of data.edges) {
      const points = layout.edge(edge.from, edge.to).points;
      const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`);
      const mark = MARKS.includes(edge.mark) ? edge.mark : "same";
      const line = svg("path", {
        d: d.join(" "), class: `edge ${mark}`, "marker-end": `url(#arrow-${mark})`,
        "data-from": edge.from, "data-to": edge.to,
      });
      const tip = svg("title");
      tip.textContent = `${edge.from} → ${edge.to}${mark === "same" ? "" : ` (${mark})`}`;
      line.appendChild(tip);
      edges.appendChild(line);
    }
    picture.appendChild(edges);
    const nodes = svg("g", { class: "nodes" });
    for (const node of data.nodes) {
      const box = layout.node(node.id);
      const mark = MARKS.includes(node.mark) ? node.mark : "same";
      const group = svg("g", {
        class: `node ${mark}`, "data-task-id": node.id,
        transform: `translate(${(box.x - box.width / 2).toFixed(1)} ${(box.y - box.height / 2).toFixed(1)})`,
      });
      group.appendChild(svg("rect", { width: box.width, height: box.height, rx: 5, ry: 5 }));
      const label = svg("text", { x: 12, y: box.height / 2 + 4.5 });
      label.textContent = node.id;
      group.appendChild(label);
      const tip = svg("title");
      tip.textContent = node.kind ? `${node.id} (${node.kind})` : node.id;
      group.appendChild(tip);
      nodes.appendChild(group);
    }
    picture.appendChild(nodes);
    holder.replaceChildren(picture);
    holder.classList.add("drawn");
    // shrink a picture a little wider than its box to fit; a much wider one scrolls, its
    // labels would be too small to read
    if (size.width <= holder.clientWidth * 2) {
      picture.classList.add("fit");
    }
  }

  function start() {
    const holder = document.getElementById("graph");
    const source = document.getElementById("graph-data");
    if (!holder || !source || typeof dagre === "undefined") {
      return;
    }
    const data = JSON.parse(source.textContent);
    if (data.nodes.length <= DRAW_AT_ONCE) {
      draw(holder, data);
      return;
    }
    const note = document.createElement("p");
    note.className = "muted large-graph";
    note.textContent = `${data.nodes.length} tasks: drawing them takes a while; ` +
      "the table lists them all.";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "draw";
    button.textContent = "Draw the graph";
    button.addEventListener("click", () => {
      button.disabled = true;
      button.textContent = "Drawing…";
      setTimeout(() => draw(holder, data), 30);  // let the browser show the new label first
    });
    holder.replaceChildren(note, button);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
