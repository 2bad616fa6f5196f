// Inline SVG line charts with no dependency: one value line, an optional dashed
// cap line, a y axis from 0 scaled to the data, and the time span on x. A cap
// far above the data (5 running under an mca of 150) is not drawn to scale, which
// would flatten the line: the chart names it at its top edge instead. `format`
// writes the legend's and the words' values and `axis` the axis labels, so a
// chart and the text beside it use one unit (durations: `duration`). Each chart is a <figure> whose <figcaption> and
// aria-label give the latest value in words, for a screen reader too.
const NS = "http://www.w3.org/2000/svg";
const W = 360,
  H = 140,
  L = 34,
  R = 6,
  T = 8,
  B = 18;

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

const present = (v) => v !== null && v !== undefined;
/** A cap more than this many times the data's peak is named at the top, not drawn to scale. */
const CAP_IN_SCALE = 2;

/** The y axis's top: the peak of what is drawn, rounded up to 1, 2 or 5 × a power of ten. */
export function niceMax(peak) {
  if (!(peak > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(peak));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= peak);
}

/** A duration in ms as the dashboard writes it everywhere: "840 ms", "2.4 s"; null/undefined: "–". */
export const duration = (ms) =>
  ms === null || ms === undefined ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;

/** spec: { title, unit, t: number[], values: (number|null)[], cap?: (number|null)[], capLabel?, format?: (v) => string, axis?: (v) => string } */
export function lineChart(spec) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const fmt = spec.format ?? ((v) => `${Math.round(v * 10) / 10}${spec.unit ? ` ${spec.unit}` : ""}`);
  const last = [...spec.values].reverse().find(present);
  const lastCap = spec.cap ? [...spec.cap].reverse().find(present) : undefined;
  const peak = Math.max(0, ...spec.values.filter(present));
  const capPeak = Math.max(0, ...(spec.cap ?? []).filter(present));
  const capInScale = lastCap !== undefined && capPeak <= Math.max(1, peak) * CAP_IN_SCALE;
  const words = `${spec.title}: latest ${last === undefined ? "no data" : fmt(last)}${lastCap !== undefined ? `, ${spec.capLabel} ${lastCap}` : ""}`;
  const cap = document.createElement("figcaption");
  cap.textContent = spec.title;
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.textContent = `latest ${last === undefined ? "–" : fmt(last)}${lastCap !== undefined ? ` · ${spec.capLabel} ${lastCap}${capInScale ? " (dashed)" : " (far above: not to scale)"}` : ""}`;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": words, preserveAspectRatio: "none" });
  const t = spec.t.length ? spec.t : [Date.now() - 60_000, Date.now()];
  const t0 = t[0],
    t1 = Math.max(t[t.length - 1], t0 + 1);
  const max = niceMax(capInScale ? Math.max(peak, capPeak) : peak) * 1.1;
  const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / max) * (H - T - B);
  for (const g of [0, 0.5, 1]) {
    svg.appendChild(el("line", { class: "grid", x1: L, x2: W - R, y1: y((max * g) / 1.1), y2: y((max * g) / 1.1) }));
    const label = (max * g) / 1.1;
    svg.appendChild(
      el(
        "text",
        { x: L - 4, y: y(label) + 3, "text-anchor": "end" },
        spec.axis ? spec.axis(label) : label < 10 ? String(Math.round(label * 10) / 10) : String(Math.round(label)),
      ),
    );
  }
  const mins = Math.max(1, Math.round((t1 - t0) / 60_000));
  svg.appendChild(el("text", { x: L, y: H - 4 }, `−${mins} min`));
  svg.appendChild(el("text", { x: W - R, y: H - 4, "text-anchor": "end" }, "now"));
  if (spec.cap && capInScale) svg.appendChild(el("path", { class: "cap", d: path(t, spec.cap, x, y) }));
  else if (lastCap !== undefined)
    svg.appendChild(el("text", { class: "cap-label", x: W - R, y: T + 8, "text-anchor": "end" }, `${spec.capLabel} ${lastCap} ↑`));
  svg.appendChild(el("path", { class: "line", d: path(t, spec.values, x, y) }));
  const lastIdx = spec.values.length - 1;
  if (lastIdx >= 0 && spec.values[lastIdx] !== null && spec.values[lastIdx] !== undefined)
    svg.appendChild(el("circle", { class: "dot", cx: x(t[lastIdx]).toFixed(1), cy: y(spec.values[lastIdx]).toFixed(1), r: 3 }));
  fig.append(cap, svg, legend);
  return fig;
}
