// Inline SVG line charts with no dependency: one value line, an optional dashed
// cap line, a y axis from 0 to the largest value, and the time span on x.
// Each chart is a <figure> whose <figcaption> and aria-label give the latest
// value in words, so the numbers are there for a screen reader too.
const NS = "http://www.w3.org/2000/svg";
const W = 360, H = 140, L = 34, R = 6, T = 8, B = 18;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function path(t, values, x, y) {
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) return (pen = false);
    d += `${pen ? "L" : "M"}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

/** spec: { title, unit, t: number[], values: (number|null)[], cap?: (number|null)[], capLabel? } */
export function lineChart(spec) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const last = [...spec.values].reverse().find((v) => v !== null && v !== undefined);
  const lastCap = spec.cap ? [...spec.cap].reverse().find((v) => v !== null && v !== undefined) : undefined;
  const words = `${spec.title}: latest ${last ?? "no data"}${spec.unit ? ` ${spec.unit}` : ""}${lastCap !== undefined ? `, ${spec.capLabel} ${lastCap}` : ""}`;
  const cap = document.createElement("figcaption");
  cap.textContent = spec.title;
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.textContent = `latest ${last ?? "–"}${spec.unit ? ` ${spec.unit}` : ""}${lastCap !== undefined ? ` · ${spec.capLabel} ${lastCap} (dashed)` : ""}`;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": words, preserveAspectRatio: "none" });
  const t = spec.t.length ? spec.t : [Date.now() - 60_000, Date.now()];
  const t0 = t[0], t1 = Math.max(t[t.length - 1], t0 + 1);
  const all = [...spec.values, ...(spec.cap ?? [])].filter((v) => v !== null && v !== undefined);
  const max = Math.max(1, ...all) * 1.1;
  const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / max) * (H - T - B);
  for (const g of [0, 0.5, 1]) {
    svg.appendChild(el("line", { class: "grid", x1: L, x2: W - R, y1: y(max * g / 1.1), y2: y(max * g / 1.1) }));
    const label = (max * g) / 1.1;
    svg.appendChild(el("text", { x: L - 4, y: y(label) + 3, "text-anchor": "end" }, label < 10 ? String(Math.round(label * 10) / 10) : String(Math.round(label))));
  }
  const mins = Math.max(1, Math.round((t1 - t0) / 60_000));
  svg.appendChild(el("text", { x: L, y: H - 4 }, `−${mins} min`));
  svg.appendChild(el("text", { x: W - R, y: H - 4, "text-anchor": "end" }, "now"));
  if (spec.cap) svg.appendChild(el("path", { class: "cap", d: path(t, spec.cap, x, y) }));
  svg.appendChild(el("path", { class: "line", d: path(t, spec.values, x, y) }));
  const lastIdx = spec.values.length - 1;
  if (lastIdx >= 0 && spec.values[lastIdx] !== null && spec.values[lastIdx] !== undefined)
    svg.appendChild(el("circle", { class: "dot", cx: x(t[lastIdx]).toFixed(1), cy: y(spec.values[lastIdx]).toFixed(1), r: 3 }));
  fig.append(cap, svg, legend);
  return fig;
}
