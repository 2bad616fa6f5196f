// The Organisations panel: each org's running workflows, its tenants together, against its caps (mca for
// Class B + C, mcaUrgent for Class A), and its tenants with theirs, from GET /v1/admin/orgs (the same admin
// auth as the rest of the page). An org's caps bound its tenants together: a tenant under its own mca
// whose org is AT CAP waits for its org, not for itself (docs/operations.md). Polled every 5 s: each call
// reads Redis (one pipeline, a hash per org and per tenant of an org). Orgs are few: the table is
// redrawn whole.
const POLL_MS = 5000;

const $ = (id) => document.getElementById(id);
const cap = (x) => (x === null || x === undefined ? "–" : String(x));

function cell(tr, field) {
  const td = document.createElement("td");
  if (field) td.dataset.field = field;
  tr.appendChild(td);
  return td;
}

/** Which of the org's caps its tenants hold together now: "MCA", "Class A", both, or "". */
export function atCap(o) {
  const { running, caps } = o.live;
  return [caps.mca !== null && running.BC >= caps.mca && "MCA", caps.mcaUrgent !== null && running.A >= caps.mcaUrgent && "Class A"]
    .filter(Boolean)
    .join(", ");
}

function stateCell(tr, o) {
  const td = cell(tr, "state");
  const at = atCap(o);
  if (!at) {
    td.textContent = "ok";
    return;
  }
  tr.classList.add("at-cap");
  const b = document.createElement("span");
  b.className = "badge cap";
  b.textContent = "AT CAP";
  b.title = `its tenants together are at the org's ${at}`;
  td.append(b, document.createTextNode(at));
}

/** Each tenant as a link to its detail, with its own running B+C · A. */
function tenantsCell(tr, o) {
  const td = cell(tr, "tenants");
  if (!o.tenants.length) td.textContent = "no tenants";
  o.tenants.forEach((t, i) => {
    const s = o.live.byTenant[t] ?? { A: 0, BC: 0 };
    const a = document.createElement("a");
    a.href = `#tenant=${encodeURIComponent(t)}`;
    a.textContent = t;
    a.dataset.tenant = t;
    td.append(...(i ? [document.createTextNode(" · ")] : []), a, document.createTextNode(` ${s.BC} B+C, ${s.A} A`));
  });
}

function render(orgs) {
  const tbody = $("org-rows");
  tbody.textContent = "";
  $("org-table").hidden = orgs.length === 0;
  for (const o of orgs) {
    const tr = document.createElement("tr");
    tr.dataset.org = o.org;
    cell(tr).textContent = o.org;
    stateCell(tr, o);
    cell(tr, "running").textContent = `${o.live.running.BC} / ${cap(o.policy.mca)}`;
    cell(tr, "classA").textContent = `${o.live.running.A} / ${cap(o.policy.mcaUrgent)}`;
    cell(tr).textContent = String(o.policy.weight);
    tenantsCell(tr, o);
    const label = atCap(o) ? `, at the org's ${atCap(o)}` : "";
    tr.setAttribute("aria-label", `${o.org}${label}`);
    tbody.appendChild(tr);
  }
  const full = orgs.filter((o) => atCap(o)).length;
  $("org-summary").textContent = orgs.length
    ? `${orgs.length} organisation${orgs.length === 1 ? "" : "s"}${full ? `, ${full} at cap` : ""}`
    : "no organisations";
}

async function poll() {
  try {
    const res = await fetch("/v1/admin/orgs", { cache: "no-store", headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render((await res.json()).orgs);
  } catch (err) {
    $("org-summary").textContent = `cannot read the organisations (${err.message}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

export function startOrgs() {
  poll();
}
