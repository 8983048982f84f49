// strata line chart: SVG, no libraries.
//
//   StrataChart.line(container, series, options)
//
// series:  [{name, points: [{t, value}], color?}]   t in milliseconds since the epoch
// options: {height?: px (default 220), format?: value -> text (y axis and tooltips),
//           empty?: text shown when there is no point}
//
// The container's content is replaced by one <svg> (width 100%); labels are text nodes, never
// markup. The drawn series get `data-points` (their point count) for tests.
"use strict";

const StrataChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  // "nice" tick values from lo up to the first at or above hi, about `count` of them
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    let v = Math.ceil(lo / step) * step;
    for (; v < hi - step * 1e-9; v += step) out.push(v);
    out.push(v);
    return out;
  }

  function timeLabel(t, span) {
    const d = new Date(t);
    const pad = (n) => String(n).padStart(2, "0");
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    if (span <= 36 * 3600e3) return span <= 600e3 ? hm + ":" + pad(d.getSeconds()) : hm;
    return pad(d.getDate()) + "." + pad(d.getMonth() + 1) + " " + hm;
  }

  function line(container, series, options) {
    const opts = Object.assign({ height: 220, format: (v) => String(v), empty: "no data yet" }, options || {});
    const width = Math.max(container.clientWidth || 0, 320);
    const height = opts.height;
    const m = { top: 12, right: 16, bottom: 26, left: 78 };
    const svg = node("svg", {
      class: "strata-chart", width: "100%", height, viewBox: `0 0 ${width} ${height}`,
      role: "img",
    });
    container.replaceChildren(svg);
    const all = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.value)));
    if (all.length === 0) {
      svg.appendChild(node("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, opts.empty));
      return svg;
    }
    let t0 = Math.min(...all.map((p) => p.t));
    let t1 = Math.max(...all.map((p) => p.t));
    if (t1 === t0) { t0 -= 30e3; t1 += 30e3; }
    let v1 = Math.max(...all.map((p) => p.value));
    const v0 = Math.min(0, ...all.map((p) => p.value));
    if (v1 === v0) v1 = v0 + 1;
    const yt = ticks(v0, v1, 4);
    v1 = Math.max(v1, yt[yt.length - 1]);
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * (width - m.left - m.right);
    const y = (v) => height - m.bottom - ((v - v0) / (v1 - v0)) * (height - m.top - m.bottom);

    const axes = node("g", { class: "axes" });
    for (const v of yt) {
      axes.appendChild(node("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: "grid" }));
      axes.appendChild(node("text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, opts.format(v)));
    }
    const xCount = Math.max(2, Math.floor((width - m.left - m.right) / 110));
    for (let i = 0; i <= xCount; i++) {
      const t = t0 + ((t1 - t0) * i) / xCount;
      const anchor = i === 0 ? "start" : i === xCount ? "end" : "middle";
      axes.appendChild(node("text", { x: x(t), y: height - 8, "text-anchor": anchor }, timeLabel(t, t1 - t0)));
    }
    svg.appendChild(axes);

    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      const pts = s.points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.value)).sort((a, b) => a.t - b.t);
      const g = node("g", { class: "series", "data-name": s.name || "", "data-points": pts.length });
      g.appendChild(node("polyline", {
        points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`).join(" "),
        fill: "none", stroke: color, "stroke-width": 2,
      }));
      for (const p of pts.length <= 120 ? pts : []) {
        const dot = node("circle", { cx: x(p.t), cy: y(p.value), r: 2.5, fill: color });
        dot.appendChild(node("title", {}, `${timeLabel(p.t, 0)}  ${opts.format(p.value)}`));
        g.appendChild(dot);
      }
      svg.appendChild(g);
    });
    if (series.length > 1) {
      const legend = node("g", { class: "legend" });
      series.forEach((s, i) => {
        legend.appendChild(node("text", { x: m.left + 8 + i * 120, y: m.top + 4, fill: s.color || PALETTE[i % PALETTE.length] }, s.name || ""));
      });
      svg.appendChild(legend);
    }
    return svg;
  }

  return { line, ticks };
})();
