// One tenant's detail: 15-minute charts, links to its queues in Bull Board, and
// the on-call actions. Every action asks for confirmation in a modal <dialog>
// and goes through the admin API, which records it in the audit log. Actions
// send a JSON body from this origin: with the browser's Basic credentials the
// API accepts nothing else (a cross-site form cannot act for the operator).
import { lineChart } from "./charts.js";

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
    const d = await api("GET", `/v1/admin/usage/${encodeURIComponent(tenant)}`);
    if (tenant !== current) return;
    render(d, first);
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
    $("detail-summary").textContent =
      `${t.atCap.any ? "AT CAP · " : ""}${t.paused ? "PAUSED · " : ""}running ${bc} / mca ${t.mca} (burst ${t.burst.state}), Class A ${t.running.A} / ${t.mcaUrgent}, ` +
      `tools ${t.tools.inFlight} / mctc ${t.tools.mctc}, ${t.throttledPerMin} THROTTLED/min, queued ${t.queued.total}, parked ${t.parked}, ` +
      `enqueue→start p99 ${t.latency.p99 === null ? "–" : t.latency.p99 >= 1000 ? `${(t.latency.p99 / 1000).toFixed(1)} s` : `${t.latency.p99} ms`}, ` +
      (t.fairShare.ratio === null
        ? "fair share – (not backlogged in the last minute)"
        : `fair share ${share(t.fairShare.ratio)} (slot-time ÷ weighted fair share over the ${t.fairShare.backloggedTicks} samples of the last minute it was backlogged in)`);
  }
  const links = $("detail-links");
  if (first || !links.childElementCount) {
    links.textContent = "Bull Board: ";
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
    lineChart({ title: "Enqueue→start p99", unit: "ms", t: h.t, values: s.p99Ms }),
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
$("act-requeue").addEventListener("click", () => act("Requeue every parked workflow", "POST", "/parked/requeue", {}, (o) => `${o.requeued} requeued`));
$("act-fail").addEventListener("click", () => act("Fail every parked workflow", "POST", "/parked/fail", { reason: "failed from the dashboard" }, (o) => `${o.failed} failed`));
$("act-drain").addEventListener("click", () => act("Cancel every queued workflow (drain)", "POST", "/drain", { all: true }, (o) => `${o.cancelled} cancelled`));
$("caps-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const mca = Number($("in-mca").value);
  const mctc = Number($("in-mctc").value);
  act(`Set mca ${mca} and mctc ${mctc}`, "PATCH", "", { mca, mctc }, (o) => `mca ${o.policy.mca}, mctc ${o.policy.mctc}`);
});
