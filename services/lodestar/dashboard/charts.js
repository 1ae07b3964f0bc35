// Small SVG charts for the Lodestar dashboards: line, grouped bar and heat map.
// No dependencies. Every chart replaces the content of `host` with one <svg> whose
// marks carry their data (data-series, data-label, data-value) and a <title> tooltip.

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fdf", "#e0803a", "#2e9e6a", "#c2456b", "#7b5cc4", "#8c8c8c", "#c9a227"];

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs || {})) {
    node.setAttribute(key, String(value));
  }
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, attrs) {
  const node = el("text", { x, y, ...(attrs || {}) }, parent);
  node.textContent = content;
  return node;
}

function tip(node, content) {
  el("title", {}, node).textContent = content;
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1e9) return (value / 1e9).toFixed(1) + "G";
  if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (value / 1e3).toFixed(1) + "k";
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(abs < 1 ? 3 : 2)));
}

export function formatPercent(value) {
  if (value === null || value === undefined) return "–";
  return (value * 100).toFixed(1) + "%";
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function frame(host, width, height, title) {
  host.replaceChildren();
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  if (title) svg.setAttribute("aria-label", title);
  host.appendChild(svg);
  return svg;
}

function empty(host, message) {
  host.replaceChildren();
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = message || "No data in this range.";
  host.appendChild(p);
}

function legend(svg, names, x, y) {
  const group = el("g", { class: "legend" }, svg);
  let offset = x;
  names.forEach((name, i) => {
    el("rect", { x: offset, y: y - 9, width: 10, height: 10, fill: color(i) }, group);
    const label = text(group, offset + 14, y, name, { class: "legend-label" });
    offset += 24 + Math.max(40, name.length * 7);
    return label;
  });
}

function yAxis(svg, box, max, format) {
  const group = el("g", { class: "axis" }, svg);
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = box.bottom - ((box.bottom - box.top) * i) / 4;
    el("line", { x1: box.left, x2: box.right, y1: y, y2: y, class: "grid" }, group);
    text(group, box.left - 6, y + 4, (format || formatNumber)(value), { "text-anchor": "end" });
  }
}

function xLabels(svg, box, labels, at) {
  const group = el("g", { class: "axis" }, svg);
  const every = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    if (i % every !== 0 && i !== labels.length - 1) return;
    text(group, at(i), box.bottom + 16, label, { "text-anchor": "middle" });
  });
}

// series: [{name, values: [number|null]}], labels: [string] (one per value)
export function lineChart(host, { labels, series, format, title }) {
  if (!labels.length || !series.length) return empty(host);
  const width = 720, height = 260;
  const box = { left: 56, right: width - 16, top: 28, bottom: height - 30 };
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...values));
  const svg = frame(host, width, height, title);
  yAxis(svg, box, max, format);
  const x = (i) => labels.length === 1
    ? (box.left + box.right) / 2
    : box.left + ((box.right - box.left) * i) / (labels.length - 1);
  const y = (v) => box.bottom - ((box.bottom - box.top) * v) / max;
  xLabels(svg, box, labels, x);
  series.forEach((s, index) => {
    const group = el("g", { class: "series", "data-series": s.name }, svg);
    const points = s.values
      .map((v, i) => (v === null || v === undefined ? null : `${x(i)},${y(v)}`))
      .filter((p) => p !== null);
    el("polyline", {
      points: points.join(" "), fill: "none", stroke: color(index), "stroke-width": 2,
      class: "line",
    }, group);
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const dot = el("circle", {
        cx: x(i), cy: y(v), r: 2.5, fill: color(index), class: "point",
        "data-label": labels[i], "data-value": v,
      }, group);
      tip(dot, `${s.name} ${labels[i]}: ${(format || formatNumber)(v)}`);
    });
  });
  legend(svg, series.map((s) => s.name), box.left, 16);
  return svg;
}

// grouped bars: labels along x, one bar per series in each group
export function barChart(host, { labels, series, format, title }) {
  if (!labels.length || !series.length) return empty(host);
  const width = 720, height = 260;
  const box = { left: 56, right: width - 16, top: 28, bottom: height - 30 };
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...values));
  const svg = frame(host, width, height, title);
  yAxis(svg, box, max, format);
  const slot = (box.right - box.left) / labels.length;
  const bar = Math.max(2, (slot * 0.8) / series.length);
  const center = (i) => box.left + slot * i + slot / 2;
  xLabels(svg, box, labels, center);
  series.forEach((s, index) => {
    const group = el("g", { class: "series", "data-series": s.name }, svg);
    s.values.forEach((v, i) => {
      const value = v || 0;
      const h = ((box.bottom - box.top) * value) / max;
      const rect = el("rect", {
        x: center(i) - (bar * series.length) / 2 + bar * index, y: box.bottom - h,
        width: Math.max(1, bar - 1), height: h, fill: color(index), class: "bar",
        "data-label": labels[i], "data-value": value,
      }, group);
      tip(rect, `${s.name} ${labels[i]}: ${(format || formatNumber)(value)}`);
    });
  });
  if (series.length > 1 || series[0].name) legend(svg, series.map((s) => s.name), box.left, 16);
  return svg;
}

// rows × columns of values in 0..1 (null: not observed); cell text is the formatted value
export function heatMap(host, { rows, columns, values, format, title }) {
  if (!rows.length) return empty(host);
  const cellW = 64, cellH = 22, left = 96, top = 24;
  const width = left + cellW * columns.length + 8;
  const height = top + cellH * rows.length + 8;
  const svg = frame(host, width, height, title);
  svg.setAttribute("width", String(Math.min(width, 900)));
  const fmt = format || formatPercent;
  columns.forEach((c, j) => {
    text(svg, left + cellW * j + cellW / 2, top - 8, c, { "text-anchor": "middle",
      class: "axis-label" });
  });
  rows.forEach((r, i) => {
    text(svg, left - 6, top + cellH * i + cellH / 2 + 4, r, { "text-anchor": "end",
      class: "axis-label" });
    columns.forEach((c, j) => {
      const v = values[i][j];
      const observed = v !== null && v !== undefined;
      const cell = el("rect", {
        x: left + cellW * j, y: top + cellH * i, width: cellW - 2, height: cellH - 2,
        fill: observed ? `rgba(47, 111, 223, ${0.08 + 0.92 * Math.min(1, v)})` : "#f1f1f1",
        class: "cell", "data-row": r, "data-column": c, "data-value": observed ? v : "",
      }, svg);
      tip(cell, `${r} ${c}: ${observed ? fmt(v) : "not yet"}`);
      if (observed) {
        text(svg, left + cellW * j + cellW / 2 - 1, top + cellH * i + cellH / 2 + 3, fmt(v), {
          "text-anchor": "middle", class: v > 0.5 ? "cell-text light" : "cell-text",
        });
      }
    });
  });
  return svg;
}
