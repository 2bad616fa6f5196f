// The Reviewer queues panel: human review items waiting per reviewer pool, tenant and class, and
// claimed per pool, from GET /v1/admin/reviewer-pools (the same admin auth as the rest of the page).
// Polled every 5 s, not every second: unlike /v1/admin/usage it is not a cached snapshot, each call
// reads Redis (a few commands per pool and class). A queue with more items waiting now than about a
// minute ago, and no fewer than at the last poll, reads "growing" — in words, not only in colour: one
// class growing while the others hold is the reviewer pool falling behind (docs/operations.md).
const POLL_MS = 5000;
const WINDOW_MS = 60_000;
/** A growth verdict needs a history at least this long (a page just opened says nothing yet). */
const MIN_SPAN_MS = 20_000;
/** Rows drawn at most; `fairlane reviews` lists them all. */
const MAX_ROWS = 200;

const $ = (id) => document.getElementById(id);
const history = new Map(); // "pool|tenant|cls" -> [{ t, n }], oldest first, the last WINDOW_MS
let lastPollAt = 0;

/** Records this poll's counts; a queue seen before but absent now has 0 waiting. */
function remember(waiting, now) {
  const seen = new Set();
  for (const w of waiting) {
    const k = `${w.pool}|${w.tenant}|${w.cls}`;
    seen.add(k);
    let h = history.get(k);
    // New since the last poll: it had none waiting then.
    if (!h) history.set(k, (h = lastPollAt ? [{ t: lastPollAt, n: 0 }] : []));
    h.push({ t: now, n: w.waiting });
  }
  for (const [k, h] of history) {
    if (!seen.has(k)) h.push({ t: now, n: 0 });
    while (h.length > 1 && h[0].t < now - WINDOW_MS) h.shift();
    if (h.every((s) => s.n === 0)) history.delete(k);
  }
  lastPollAt = now;
}

/** "+4 in 55 s" when the queue is growing, else "". */
export function growth(h, now) {
  if (!h || h.length < 2) return "";
  const first = h[0];
  const last = h[h.length - 1];
  const prev = h[h.length - 2];
  if (now - first.t < MIN_SPAN_MS || last.n <= first.n || last.n < prev.n) return "";
  return `+${last.n - first.n} in ${Math.round((last.t - first.t) / 1000)} s`;
}

function cell(tr, text, field) {
  const td = document.createElement("td");
  td.textContent = text;
  if (field) td.dataset.field = field;
  tr.appendChild(td);
  return td;
}

/** One line per pool: waiting in all, claimed by reviewers now. Returns how many pools there are. */
function renderPools(d) {
  const ul = $("review-pools");
  ul.textContent = "";
  const pools = [...new Set([...Object.keys(d.claimed), ...d.waiting.map((w) => w.pool)])].sort();
  if (!pools.length) ul.textContent = "no reviewer pool has had a review item";
  for (const p of pools) {
    const li = document.createElement("li");
    li.dataset.pool = p;
    const waiting = d.waiting.filter((w) => w.pool === p).reduce((s, w) => s + w.waiting, 0);
    li.textContent = `${p}: ${waiting} waiting · ${d.claimed[p] ?? 0} claimed`;
    ul.appendChild(li);
  }
  return pools.length;
}

function renderRows(d, now, pools) {
  const rows = d.waiting
    .filter((w) => w.waiting > 0)
    .sort(
      (a, b) => a.pool.localeCompare(b.pool) || a.cls.localeCompare(b.cls) || b.waiting - a.waiting || a.tenant.localeCompare(b.tenant),
    );
  const tbody = $("review-rows");
  tbody.textContent = "";
  $("review-table").hidden = rows.length === 0;
  let growing = 0;
  for (const w of rows.slice(0, MAX_ROWS)) {
    const tr = document.createElement("tr");
    tr.dataset.review = `${w.pool}|${w.tenant}|${w.cls}`;
    for (const x of [w.pool, w.tenant, w.cls]) cell(tr, x);
    cell(tr, String(w.waiting), "waiting");
    const g = growth(history.get(tr.dataset.review), now);
    cell(tr, g ? `growing (${g})` : "–", "trend");
    if (g) {
      growing++;
      tr.classList.add("growing");
    }
    tbody.appendChild(tr);
  }
  const more = rows.length > MAX_ROWS ? ` · ${rows.length - MAX_ROWS} more rows (fairlane reviews lists them all)` : "";
  $("review-summary").textContent = rows.length
    ? `${rows.length} queues with items waiting${growing ? `, ${growing} growing` : ""}${more}`
    : pools
      ? "no review items waiting"
      : "";
}

async function poll() {
  try {
    const res = await fetch("/v1/admin/reviewer-pools", { cache: "no-store", headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const d = await res.json();
    const now = Date.now();
    remember(d.waiting, now);
    renderRows(d, now, renderPools(d));
  } catch (err) {
    $("review-summary").textContent = `cannot read the reviewer queues (${err.message}); retrying`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

export function startReviews() {
  poll();
}
