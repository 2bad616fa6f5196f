// The tenant table and the platform header. Polls GET /v1/admin/usage every
// second (the api's sampler serves its latest snapshot, so many open dashboards
// cost one Redis pass). Rows are keyed by tenant and updated in place: a cell's
// text is written only when it changed, and rows are moved only when the order
// changed, so 1,000 tenants update in a few milliseconds.
import { duration } from "./charts.js";
import { openDetail, closeDetail, refreshDetail, share, LOW_SHARE } from "./detail.js";
import { startOrgs } from "./orgs.js";
import { startReviews } from "./reviews.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const rows = new Map(); // tenant -> { tr, cells: HTMLElement[], bar, data }
const state = { sort: "mcaUse", dir: -1, filter: "", onlyCap: false, order: [], data: null, failures: 0 };
export const perf = { renders: 0, lastRenderMs: 0, maxRenderMs: 0, rows: 0 };
window.__dashboardPerf = perf;

const num = (x) => (x === null || x === undefined ? "–" : String(x));

const sortKeys = {
  tenant: (t) => t.tenant,
  // The default: tenants at a cap first, then by how close they are to one, then by backlog.
  mcaUse: (t) =>
    (t.atCap.any ? 1000 : 0) +
    Math.max((t.running.B + t.running.C) / t.mca, t.mcaUrgent ? t.running.A / t.mcaUrgent : 0) +
    Math.min(0.5, t.queued.total / 1e6),
  classA: (t) => t.running.A,
  toolUse: (t) => t.tools.inFlight / t.tools.mctc,
  gate: (t) => t.tools.waiting,
  throttled: (t) => t.throttledPerMin,
  queued: (t) => t.queued.total,
  parked: (t) => t.parked,
  p99: (t) => t.latency.p99 ?? -1,
  // Lowest first when ascending (its first click); tenants with no ratio last.
  fairShare: (t) => t.fairShare.ratio ?? Infinity,
};
// Sorts whose first click is ascending: names, and the fair share (the worst-served first).
const ASCENDING_FIRST = new Set(["tenant", "fairShare"]);

function makeRow(tenant) {
  const tr = document.createElement("tr");
  tr.dataset.tenant = tenant;
  const cells = [];
  for (let i = 0; i < 13; i++) {
    const td = document.createElement("td");
    tr.appendChild(td);
    cells.push(td);
  }
  const btn = document.createElement("button");
  btn.type = "button";
  btn.className = "tenant";
  btn.textContent = tenant;
  btn.addEventListener("click", () => (location.hash = `#tenant=${encodeURIComponent(tenant)}`));
  cells[0].appendChild(btn);
  const runText = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.setAttribute("aria-hidden", "true");
  bar.appendChild(document.createElement("i"));
  cells[2].append(runText, bar);
  cells[1].dataset.field = "state";
  cells[2].dataset.field = "running";
  cells[4].dataset.field = "classA";
  cells[6].dataset.field = "tools";
  cells[8].dataset.field = "throttled";
  cells[9].dataset.field = "queued";
  cells[10].dataset.field = "fairShare";
  return { tr, cells, runText, bar: bar.firstChild, last: [] };
}

function set(row, i, text, el = row.cells[i]) {
  if (row.last[i] !== text) {
    el.textContent = text;
    row.last[i] = text;
  }
}

function updateRow(row, t) {
  const bc = t.running.B + t.running.C;
  const atCap = t.atCap.any;
  if (row.tr.classList.contains("at-cap") !== atCap) row.tr.classList.toggle("at-cap", atCap);
  // What holds its queued work (the dispatcher's own reason), else its caps; "ok" only when nothing is held.
  const held = t.held ?? null;
  const stateKey = `${atCap}|${t.paused}|${t.atCap.mca}|${t.atCap.urgent}|${t.atCap.mctc}|${held?.code}|${held?.message}`;
  if (row.last.state !== stateKey) {
    row.last.state = stateKey;
    const c = row.cells[1];
    c.textContent = "";
    if (atCap) {
      const b = document.createElement("span");
      b.className = "badge cap";
      b.textContent = "AT CAP";
      const what = [t.atCap.mca && "MCA", t.atCap.urgent && "Class A", t.atCap.mctc && "MCTC"].filter(Boolean).join(", ");
      b.title = `at ${what}`;
      c.append(b, document.createTextNode(what));
    }
    if (t.paused) {
      const p = document.createElement("span");
      p.className = "badge paused";
      p.textContent = "PAUSED";
      c.append(p);
    }
    if (held && held.code !== "paused") {
      const h = document.createElement("span");
      h.className = "state-held";
      h.dataset.code = held.code;
      h.textContent = `${c.childNodes.length ? " " : ""}held: ${held.message}`;
      c.append(h);
    }
    if (!c.childNodes.length) c.textContent = "ok";
    row.tr.setAttribute(
      "aria-label",
      `${t.tenant}${atCap ? ", at cap" : ""}${t.paused ? ", paused" : ""}${held ? `, held: ${held.message}` : ""}`,
    );
  }
  set(row, 2, `${bc} / ${t.mca}`, row.runText);
  const pctW = `${Math.min(100, Math.round((bc / Math.max(1, t.mca)) * 100))}%`;
  if (row.last.bar !== pctW) row.bar.style.width = row.last.bar = pctW;
  set(row, 3, t.burst.state === "none" ? "—" : t.burst.state === "open" ? `open (≤ ${t.burstMca})` : t.burst.state);
  set(row, 4, `${t.running.A} / ${t.mcaUrgent}`);
  set(row, 5, `${t.running.A} · ${t.running.B} · ${t.running.C}`);
  set(row, 6, `${t.tools.inFlight} / ${t.tools.mctc}`);
  set(row, 7, `${t.tools.waiting} · ${duration(t.tools.avgWaitMs)}`);
  set(row, 8, num(t.throttledPerMin));
  set(row, 9, `${t.queued.A} · ${t.queued.B} · ${t.queued.C}`);
  const r = t.fairShare.ratio;
  set(row, 10, share(r));
  const low = r !== null && r < LOW_SHARE;
  if (row.cells[10].classList.contains("low-share") !== low) row.cells[10].classList.toggle("low-share", low);
  set(row, 11, num(t.parked));
  set(row, 12, t.latency.samples ? `${duration(t.latency.p50)} · ${duration(t.latency.p95)} · ${duration(t.latency.p99)}` : "–");
}

function render(data) {
  const t0 = performance.now();
  const tbody = $("rows");
  const seen = new Set();
  for (const t of data.tenants) {
    let row = rows.get(t.tenant);
    if (!row) rows.set(t.tenant, (row = makeRow(t.tenant)));
    row.data = t;
    updateRow(row, t);
    seen.add(t.tenant);
  }
  for (const [tenant, row] of rows) if (!seen.has(tenant)) row.tr.remove(), rows.delete(tenant);
  applyOrderAndFilter(tbody);
  renderPlatform(data);
  const took = performance.now() - t0;
  perf.renders++;
  perf.lastRenderMs = Math.round(took * 10) / 10;
  perf.maxRenderMs = Math.max(perf.maxRenderMs, perf.lastRenderMs);
  perf.rows = rows.size;
  $("perf").textContent = `${rows.size} rows rendered in ${perf.lastRenderMs} ms`;
}

function applyOrderAndFilter(tbody = $("rows")) {
  const key = sortKeys[state.sort];
  const list = [...rows.values()].sort((a, b) => {
    const x = key(a.data),
      y = key(b.data);
    return (x < y ? -1 : x > y ? 1 : 0) * state.dir || a.data.tenant.localeCompare(b.data.tenant);
  });
  const order = list.map((r) => r.data.tenant);
  if (order.length !== state.order.length || order.some((t, i) => t !== state.order[i])) {
    const frag = document.createDocumentFragment();
    for (const r of list) frag.appendChild(r.tr);
    tbody.appendChild(frag);
    state.order = order;
  }
  let shown = 0;
  for (const r of list) {
    const hide = (state.filter && !r.data.tenant.includes(state.filter)) || (state.onlyCap && !r.data.atCap.any);
    if (r.tr.hidden !== hide) r.tr.hidden = hide;
    if (!hide) shown++;
  }
  $("count").textContent = `(${shown} of ${rows.size})`;
}

function renderPlatform(d) {
  const p = d.platform;
  $("p-used").textContent = p.used;
  $("p-capacity").textContent = p.capacity;
  $("p-pools").textContent = p.pools.map((x) => `${x.pool}: ${x.used}/${x.capacity} (${x.workers} workers)`).join(" · ");
  $("p-reserve-used").textContent = p.reserveA.usedA;
  $("p-reserve").textContent = p.reserveA.slots;
  // The index counts tenants backlogged for half the last minute: work queued more recently is not in it yet.
  $("p-jain").textContent =
    p.fairness.index !== null
      ? p.fairness.index.toFixed(3)
      : p.totals.queued
        ? `– (${p.totals.queued} queued, none for half the last minute yet)`
        : "– (nothing queued)";
  $("p-jain-n").textContent = `${p.fairness.tenants} backlogged tenants, weighted slot-time`;
  const w = p.fairness.worst;
  $("p-worst").textContent = w ? share(w.ratio) : "–";
  $("p-worst").classList.toggle("low-share", !!w && w.ratio < LOW_SHARE);
  $("p-worst-n").textContent = w ? `${w.tenant}: slot-time ÷ its weighted fair share` : "no tenant backlogged for half the minute";
  // Isolation: a tenant whose load moves the others' enqueue→start latency (the alert), and SQS-style noisy ones.
  const n = p.noisy;
  if (n) {
    const hit = n.isolationIncomplete ?? [];
    $("p-isolation").textContent = hit.length
      ? `isolation incomplete: ${hit.map((x) => `${x.tenant} (others' p99 ${duration(x.othersP99Ms)} vs ${duration(x.baselineP99Ms)})`).join(", ")}`
      : "none: no tenant's load moves the others' latency";
    $("p-isolation").classList.toggle("low-share", hit.length > 0);
    $("p-noisy").textContent =
      `${n.count} noisy${n.tenants?.length ? ` (${n.tenants.map((x) => x.tenant).join(", ")})` : ""} · ${n.quiet} quiet: noisy = holds well over its fair share while others wait`;
  }
  $("p-running").textContent = p.totals.running;
  $("p-queued").textContent = p.totals.queued;
  $("p-parked").textContent = p.totals.parked;
  $("p-throttled").textContent = p.totals.throttledPerMin;
  $("p-atcap").textContent = p.totals.atCap;
  const ul = $("p-deps");
  ul.textContent = "";
  if (!p.dependencies.length) ul.textContent = "none reported";
  for (const dep of p.dependencies) {
    const li = document.createElement("li");
    li.className = `dep-${dep.state}`;
    li.textContent = `${dep.dependency}: ${dep.state}${dep.source === "operator" ? " (operator mark)" : ""}${dep.parked ? ` · ${dep.parked} parked` : ""}`;
    ul.appendChild(li);
  }
  $("updated").textContent = `updated ${new Date(d.at).toLocaleTimeString()} (read ${d.readMs} ms)`;
}

async function poll() {
  try {
    const res = await fetch("/v1/admin/usage", { cache: "no-store", headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    state.data = await res.json();
    state.failures = 0;
    $("conn").textContent = "live";
    render(state.data);
  } catch (err) {
    state.failures++;
    $("conn").textContent = `connection problem (${err.message}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function setupSorting() {
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const s = th.dataset.sort;
      state.dir = state.sort === s ? -state.dir : ASCENDING_FIRST.has(s) ? 1 : -1;
      state.sort = s;
      for (const o of document.querySelectorAll("th[data-sort]")) o.setAttribute("aria-sort", "none");
      th.setAttribute("aria-sort", state.dir === 1 ? "ascending" : "descending");
      state.order = [];
      applyOrderAndFilter();
    });
  }
  $("filter").addEventListener("input", (e) => {
    state.filter = e.target.value.trim();
    applyOrderAndFilter();
  });
  $("only-cap").addEventListener("change", (e) => {
    state.onlyCap = e.target.checked;
    applyOrderAndFilter();
  });
}

function route() {
  const m = /^#tenant=([a-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    $("list").hidden = true;
    openDetail(decodeURIComponent(m[1]));
  } else {
    closeDetail();
    $("list").hidden = false;
  }
}

setupSorting();
document.querySelector('th[data-sort="mcaUse"]').setAttribute("aria-sort", "descending");
window.addEventListener("hashchange", route);
$("back").addEventListener("click", (e) => {
  e.preventDefault();
  location.hash = "";
});
route();
poll();
startReviews();
startOrgs();
setInterval(refreshDetail, 2000);
