// One tenant's detail: what holds its queued work, 15-minute charts, its parked
// and recently failed workflows with their reasons, links to its queues in Bull
// Board (only those that ever held a job), and the on-call actions (only those
// that apply: Pause or Resume). Every action asks for confirmation in a modal <dialog>
// and goes through the admin API, which records it in the audit log. Actions
// send a JSON body from this origin: with the browser's Basic credentials the
// API accepts nothing else (a cross-site form cannot act for the operator).
import { duration, lineChart } from "./charts.js";

const $ = (id) => document.getElementById(id);

// A fair-share ratio (slot-time received ÷ weighted fair share while backlogged), here and in the
// table; under half of it, the alert's line, says so in words, not only in colour.
export const LOW_SHARE = 0.5;
export const share = (x) => (x === null || x === undefined ? "–" : `${x.toFixed(2)}×${x < LOW_SHARE ? " (low)" : ""}`);

let current = null; // tenant id shown
let loading = false;

export function closeDetail() {
  current = null;
  $("detail").hidden = true;
}

export async function openDetail(tenant) {
  current = tenant;
  $("detail").hidden = false;
  $("detail-title").textContent = tenant;
  $("charts").textContent = "loading…";
  $("action-result").textContent = "";
  await refreshDetail(true);
  $("detail-title").focus();
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

export async function refreshDetail(first = false) {
  if (!current || loading) return;
  const tenant = current;
  loading = true;
  try {
    const q = encodeURIComponent(tenant);
    const [d, parked, failed] = await Promise.all([
      api("GET", `/v1/admin/usage/${q}`),
      api("GET", `/v1/admin/parked?tenant=${q}&limit=20`),
      api("GET", `/v1/admin/workflows?tenant=${q}&state=failed&limit=10`),
    ]);
    if (tenant !== current) return;
    render(d, first);
    renderWorkflows(parked.parked, failed.workflows);
  } catch (err) {
    $("detail-summary").textContent = `could not load: ${err.message}`;
  } finally {
    loading = false;
  }
}

function render(d, first) {
  const t = d.tenant;
  const p = d.policy;
  if (t) {
    const bc = t.running.B + t.running.C;
    $("detail-held").textContent = t.held ? `Held: ${t.held.message}` : t.queued.total ? "Queued work is starting in its turn." : "";
    $("detail-summary").textContent =
      `${t.atCap.any ? "AT CAP · " : ""}${t.paused ? "PAUSED · " : ""}running ${bc} / mca ${t.mca} (burst ${t.burst.state}), Class A ${t.running.A} / ${t.mcaUrgent}, ` +
      `tools ${t.tools.inFlight} / mctc ${t.tools.mctc}, ${t.throttledPerMin} THROTTLED/min, queued ${t.queued.total}, parked ${t.parked}, ` +
      `enqueue→start p99 ${duration(t.latency.p99)}, ` +
      (t.fairShare.ratio === null
        ? "fair share – (not backlogged in the last minute)"
        : `fair share ${share(t.fairShare.ratio)} (slot-time ÷ weighted fair share over the ${t.fairShare.backloggedTicks} samples of the last minute it was backlogged in)`);
  }
  // State-aware: only the action that applies.
  $("act-pause").hidden = p.paused;
  $("act-resume").hidden = !p.paused;
  const links = $("detail-links");
  if (first || !links.childElementCount) {
    links.textContent = d.queues.length ? "Bull Board: " : "Bull Board: none of its queues has held a job yet";
    for (const q of d.queues) {
      const a = document.createElement("a");
      a.href = `/admin/queues/queue/${encodeURIComponent(q)}`;
      a.textContent = q;
      links.appendChild(a);
    }
    $("in-mca").value = p.mca;
    $("in-mctc").value = p.mctc;
  }
  const h = d.history;
  const s = h.series;
  const charts = $("charts");
  charts.textContent = "";
  charts.append(
    lineChart({ title: "Running B+C vs MCA", unit: "workflows", t: h.t, values: s.running, cap: s.mca, capLabel: "mca" }),
    lineChart({ title: "Tool calls in flight vs MCTC", unit: "calls", t: h.t, values: s.toolsInFlight, cap: s.mctc, capLabel: "mctc" }),
    lineChart({ title: "THROTTLED rate", unit: "/min", t: h.t, values: s.throttledPerMin }),
    lineChart({ title: "Queue depth (ingress)", unit: "workflows", t: h.t, values: s.queued }),
    lineChart({ title: "Enqueue→start p99", t: h.t, values: s.p99Ms, format: duration, axis: duration }),
  );
}

const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–");

/** Rows of a small table; every value written as text (never markup: reasons come from handlers). */
function fillTable(id, rows, cells, empty) {
  const tbody = $(id);
  tbody.textContent = "";
  if (!rows.length) {
    const tr = tbody.insertRow();
    const td = tr.insertCell();
    td.colSpan = cells.length;
    td.textContent = empty;
    return;
  }
  for (const r of rows) {
    const tr = tbody.insertRow();
    for (const c of cells) tr.insertCell().textContent = c(r);
  }
}

function renderWorkflows(parked, failed) {
  fillTable(
    "parked-rows",
    parked,
    [(w) => w.id, (w) => w.class ?? "–", (w) => w.type ?? "–", (w) => w.dependency, (w) => w.reason ?? "–", (w) => when(w.parkedAt)],
    "none parked",
  );
  fillTable(
    "failed-rows",
    failed,
    [(w) => w.id, (w) => w.class, (w) => w.type, (w) => w.error?.code ?? "–", (w) => w.error?.message ?? "–", (w) => when(w.finishedAt)],
    "none failed recently",
  );
}

function confirmAction(text) {
  const dlg = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
    $("confirm-cancel").focus();
  });
}

async function act(label, method, pathSuffix, body, describe) {
  const tenant = current;
  if (!tenant) return;
  if (!(await confirmAction(`${label} for tenant "${tenant}"? This is recorded in the audit log.`))) {
    $("action-result").textContent = `${label}: cancelled, nothing changed.`;
    return;
  }
  try {
    const out = await api(method, `/v1/admin/tenants/${encodeURIComponent(tenant)}${pathSuffix}`, body);
    $("action-result").textContent = `${label}: done. ${describe(out)}`;
    await refreshDetail();
  } catch (err) {
    $("action-result").textContent = `${label}: refused — ${err.message}`;
  }
}

$("act-pause").addEventListener("click", () => act("Pause", "POST", "/pause", {}, (o) => `paused: ${o.paused}`));
$("act-resume").addEventListener("click", () => act("Resume", "POST", "/resume", {}, (o) => `paused: ${o.paused}`));
$("act-requeue").addEventListener("click", () =>
  act("Requeue every parked workflow", "POST", "/parked/requeue", {}, (o) => `${o.requeued} requeued`),
);
$("act-fail").addEventListener("click", () =>
  act("Fail every parked workflow", "POST", "/parked/fail", { reason: "failed from the dashboard" }, (o) => `${o.failed} failed`),
);
$("act-drain").addEventListener("click", () =>
  act("Cancel every queued workflow (drain)", "POST", "/drain", { all: true }, (o) => `${o.cancelled} cancelled`),
);
$("caps-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const mca = Number($("in-mca").value);
  const mctc = Number($("in-mctc").value);
  act(`Set mca ${mca} and mctc ${mctc}`, "PATCH", "", { mca, mctc }, (o) => `mca ${o.policy.mca}, mctc ${o.policy.mctc}`);
});
