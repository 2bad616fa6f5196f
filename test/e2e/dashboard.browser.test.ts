import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium, type Browser, type Page } from "playwright-core";
import { startApiRole, type ApiRole } from "../../workers/api.ts";
import { REPO_ROOT } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { http } from "../helpers/api.ts";
import { CHROMIUM_ARGS, chromiumPath } from "../helpers/browser.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * The Tenant Concurrency Dashboard in real headless Chromium (Debian's
 * `chromium`, driven by playwright-core), on a small real deployment: an exec
 * process and a dispatcher, the api in this process, 1,000 idle tenants next
 * to a storming one. The page must mark the storming tenant at its cap, show
 * its numbers moving, count a Class A workflow, show its fair-share ratio in its
 * row, the header and /metrics, draw the tenant's charts, run
 * one confirmed action that lands in the audit log, show a tenant's review item
 * waiting for its class in the Reviewer queues panel, list an org with its tenant in the Organisations
 * panel, and log no console error.
 * Bull Board renders under its Content-Security-Policy with no violation, and
 * a cross-site page's form cannot act with the browser's Basic credentials.
 * Saves docs/screenshots/dashboard.png (and dashboard-tenant.png).
 */
const IDLE = 1000;
const TENANTS: Record<string, PolicySpec> = {
  stormco: { tier: "professional", mca: 3, burst: { mca: 3 }, mcaUrgent: 1 },
  urgentco: { tier: "enterprise", mca: 5, burst: { mca: 5 }, mcaUrgent: 2 },
};
for (let i = 1; i <= IDLE; i++) TENANTS[`idle-${String(i).padStart(4, "0")}`] = { tier: "free" };

const SHOTS = resolve(REPO_ROOT, "docs/screenshots");

describe("Tenant Concurrency Dashboard in a real browser", () => {
  let d: Deployment;
  let api: ApiRole;
  let base: string;
  let browser: Browser;
  let page: Page;
  const token = randomBytes(18).toString("hex");
  const consoleErrors: string[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    const executablePath = chromiumPath();
    d = await deployment(TENANTS);
    d.start("exec", { FAIRLANE_CONCURRENCY: "8" });
    d.start("dispatcher");
    api = await startApiRole(d.p, token, createLogger("api", "warn"));
    base = `http://127.0.0.1:${api.port}`;
    // An org over one of the idle tenants, for the Organisations panel.
    const admin = { authorization: `Bearer ${token}` };
    assert.equal((await http(base, "PUT", "/v1/admin/orgs/holding", { headers: admin, body: { mca: 4, mcaUrgent: 1 } })).status, 201);
    const joined = await http(base, "PUT", "/v1/admin/tenants/idle-0003", { headers: admin, body: { tier: "free", org: "holding" } });
    assert.equal(joined.status, 200, JSON.stringify(joined.body));
    await d.waitCapacity(8);
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
    const context = await browser.newContext({
      httpCredentials: { username: "oncall", password: token },
      viewport: { width: 1500, height: 950 },
    });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.exposeFunction("__cspViolation", (v: string) => cspViolations.push(v));
    await page.addInitScript(() =>
      document.addEventListener("securitypolicyviolation", (e) =>
        (window as unknown as { __cspViolation(v: string): void }).__cspViolation(
          `${e.violatedDirective} ${e.blockedURI} on ${location.pathname}`,
        ),
      ),
    );
  });
  after(async () => {
    await browser?.close();
    await api?.stop();
    await d?.close();
  });

  it("refuses the dashboard without admin credentials, including with a tenant key", async () => {
    const key = (await d.p.apiKeys.create("stormco")).key;
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer ${key}` },
      { authorization: `Basic ${Buffer.from(`x:${key}`).toString("base64")}` },
    ]) {
      assert.equal((await fetch(`${base}/dashboard/`, { headers })).status, 401);
      assert.equal((await fetch(`${base}/dashboard/app.js`, { headers })).status, 401);
    }
  });

  it("shows a storm forming, a Class A counter, a tenant's charts, and a confirmed action in the audit log", {
    timeout: 90_000,
  }, async () => {
    const t0 = Date.now();
    // The storm: far more than the tenant's mca of 3, each running 1.2 s.
    const storm = Array.from({ length: 36 }, () => ({ type: "observed", class: "B", payload: { obs: d.obs, durationMs: 1200 } }));
    await d.admit("stormco", storm);

    await page.goto(`${base}/dashboard/`);
    const row = page.locator('tr[data-tenant="stormco"]');
    await row.waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('tr[data-tenant="stormco"]')?.classList.contains("at-cap"), undefined, {
      timeout: 15_000,
    });
    assert.match(await row.locator("td").nth(1).innerText(), /AT CAP/, "the at-cap mark is text, not only color");
    assert.match(await row.locator('td[data-field="running"]').innerText(), /^3 \/ 3/);
    const rowsShown = await page.locator("#rows tr").count();
    assert.ok(rowsShown >= IDLE + 2, `${rowsShown} rows`);

    // Its numbers change between refreshes (the queue drains 3 at a time).
    const queued1 = await row.locator('td[data-field="queued"]').innerText();
    await page.waitForFunction(
      (q) => document.querySelector('tr[data-tenant="stormco"] td[data-field="queued"]')?.textContent !== q,
      queued1,
      { timeout: 8_000 },
    );
    const queued2 = await row.locator('td[data-field="queued"]').innerText();
    assert.notEqual(queued1, queued2);

    // A Class A workflow of another tenant shows in the Class A counter.
    await d.admit("urgentco", [{ type: "observed", class: "A", payload: { obs: d.obs, durationMs: 4000 } }]);
    await page.waitForFunction(() => Number(document.getElementById("p-reserve-used")?.textContent) >= 1, undefined, { timeout: 8_000 });
    assert.match(await page.locator('tr[data-tenant="urgentco"] td[data-field="classA"]').innerText(), /^1 \/ 2/);

    // Fair share: stormco is the only backlogged tenant, so the slots backlogged tenants hold are all its
    // (capped) fair share: 1.00×, in its row and as the header's worst; an idle tenant has no ratio.
    const fairCell = row.locator('td[data-field="fairShare"]');
    await page.waitForFunction(
      () => /×/.test(document.querySelector('tr[data-tenant="stormco"] td[data-field="fairShare"]')?.textContent ?? ""),
      undefined,
      { timeout: 8_000 },
    );
    const ratio = Number(/^(\d+\.\d\d)×$/.exec(await fairCell.innerText())?.[1]);
    // 1.00 unless a tick caught urgentco's Class A workflow queued (capped at 1, the rest is stormco's).
    assert.ok(ratio >= 0.99 && ratio <= 1.1, `stormco's fair share ${ratio}`);
    assert.equal(await page.locator('tr[data-tenant="idle-0001"] td[data-field="fairShare"]').innerText(), "–", "not backlogged: no ratio");
    // The worst counts tenants backlogged in at least half the minute's samples: stormco, once its storm has run that long.
    await page.waitForFunction(() => /^stormco\b/.test(document.getElementById("p-worst-n")?.textContent ?? ""), undefined, {
      timeout: 20_000,
    });
    assert.match(await page.locator('[data-testid="worst-fair-share"]').innerText(), /^1\.\d\d×$/);
    const scrape = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    const gauge = /^fairlane_tenant_fair_share_ratio\{tenant="stormco"\} (\S+)$/m.exec(scrape);
    assert.ok(gauge && Number(gauge[1]) >= 0.99 && Number(gauge[1]) <= 1.1, `the gauge: ${gauge?.[0]}`);
    assert.match(scrape, /^fairlane_fairness_worst_share_ratio 1(\.\d+)?$/m);
    assert.doesNotMatch(scrape, /fairlane_tenant_fair_share_ratio\{tenant="idle-/);

    // A real review item (the `reviewed` workflow calls ctx.review): it waits in the tenant's pool
    // (shared, the default) while the steps below run; the panel is checked at the end.
    const [reviewId] = await d.admit("urgentco", [{ type: "reviewed", class: "B", payload: { obs: d.obs, case: "dashboard" } }]);

    mkdirSync(SHOTS, { recursive: true });
    const shot = resolve(SHOTS, "dashboard.png");
    await page.screenshot({ path: shot });
    console.log(`screenshot: ${shot}`);
    const perf = await page.evaluate(() => (window as unknown as { __dashboardPerf: Record<string, number> }).__dashboardPerf);
    console.log(JSON.stringify({ rows: perf.rows, renders: perf.renders, lastRenderMs: perf.lastRenderMs, maxRenderMs: perf.maxRenderMs }));

    // Sorting by tenant and filtering work with the keyboard-reachable controls.
    await page.fill("#filter", "stormco");
    await page.waitForFunction(() => document.querySelectorAll("#rows tr:not([hidden])").length === 1);
    await page.fill("#filter", "");

    // The tenant's detail: charts, Bull Board links, an action with confirmation.
    await row.locator("button.tenant").click();
    await page.locator("#detail").waitFor({ state: "visible" });
    await page.waitForFunction(() => document.querySelectorAll("#charts figure.chart svg path.line").length === 5, undefined, {
      timeout: 10_000,
    });
    // A few history points (one every 3 s) so the screenshot shows the storm as a line.
    await page.waitForFunction(
      () => (document.querySelector("#charts figure.chart path.line")?.getAttribute("d")?.split("L").length ?? 0) >= 4,
      undefined,
      { timeout: 15_000 },
    );
    const linePath = await page.locator("#charts figure.chart").first().locator("path.line").getAttribute("d");
    assert.ok(linePath?.startsWith("M"), "the running-vs-MCA chart has a line");
    assert.equal(await page.locator('#detail-links a[href="/admin/queues/queue/ingress.stormco.B"]').count(), 1);
    assert.match(
      await page.locator("#detail-summary").innerText(),
      /fair share \d+\.\d\d× \(slot-time ÷ weighted fair share over the \d+ samples/,
    );

    await page.click("#act-pause");
    await page.locator("#confirm").waitFor({ state: "visible" });
    await page.click("#confirm-ok");
    await page.waitForFunction(() => /Pause: done/.test(document.getElementById("action-result")?.textContent ?? ""), undefined, {
      timeout: 5_000,
    });
    await page.screenshot({ path: resolve(SHOTS, "dashboard-tenant.png"), fullPage: true });
    const audit = await http(base, "GET", "/v1/admin/audit?limit=20", { headers: { authorization: `Bearer ${token}` } });
    const entry = audit.body.entries.find((e: { action: string; target: string }) => e.action === "tenant.pause" && e.target === "stormco");
    assert.ok(entry, JSON.stringify(audit.body.entries.slice(0, 3)));
    assert.equal(entry.operator, "oncall", "the Basic user name says who acted");
    assert.equal(d.p.registry.get("stormco")?.policy.paused ?? (await sleep(500), d.p.registry.get("stormco")?.policy.paused), true);

    // Drain sends what it means ({ all: true }) as same-origin JSON, like every dashboard action.
    await page.click("#act-drain");
    await page.locator("#confirm").waitFor({ state: "visible" });
    await page.click("#confirm-ok");
    await page.waitForFunction(
      () => /drain\): done\. \d+ cancelled/.test(document.getElementById("action-result")?.textContent ?? ""),
      undefined,
      { timeout: 5_000 },
    );

    // The Reviewer queues panel (shown with the tenant list and with a tenant's detail): urgentco's
    // Class B item waits in the shared pool, and /metrics says the same.
    const reviewRow = page.locator('tr[data-review="shared|urgentco|B"]');
    await reviewRow.waitFor({ timeout: 15_000 });
    assert.equal(await reviewRow.locator('td[data-field="waiting"]').innerText(), "1");
    assert.match(await page.locator('#review-pools li[data-pool="shared"]').innerText(), /^shared: 1 waiting · 0 claimed$/);
    const review = await http(base, "GET", `/v1/workflows/${reviewId}`, { key: (await d.p.apiKeys.create("urgentco")).key });
    assert.equal(review.body.state, "review", "the item is the workflow's review");
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    assert.match(metrics, /^fairlane_review_queue_depth\{pool="shared",tenant="urgentco",class="B"\} 1$/m);

    // The Organisations panel lists the org with its tenant and its running work against its caps.
    const orgRow = page.locator('tr[data-org="holding"]');
    await orgRow.waitFor({ timeout: 10_000 });
    assert.deepEqual(
      [
        await orgRow.locator('td[data-field="running"]').innerText(),
        await orgRow.locator('td[data-field="classA"]').innerText(),
        await orgRow.locator('td[data-field="tenants"] a[data-tenant]').allInnerTexts(),
      ],
      ["0 / 4", "0 / 1", ["idle-0003"]],
    );

    assert.deepEqual(consoleErrors, [], "no console errors");
    assert.deepEqual(cspViolations, [], "no Content-Security-Policy violations");

    // Bull Board links back to the dashboard (its UI config names the link).
    const bb = await fetch(`${base}/admin/queues`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bb.status, 200);
    const html = await bb.text();
    assert.match(html, /Tenant Concurrency Dashboard/);
    assert.match(html, /\/dashboard/);
    console.log(JSON.stringify({ browserTestMs: Date.now() - t0 }));
    assert.ok(existsSync(shot));
  });

  it("renders Bull Board under its Content-Security-Policy, and refuses a cross-site form that carries the browser's credentials", {
    timeout: 60_000,
  }, async () => {
    consoleErrors.length = 0;
    cspViolations.length = 0;
    await d.admit("idle-0002", [{ type: "observed", class: "C", payload: { obs: d.obs, durationMs: 100 } }]);
    await api.bullBoard.refresh();
    for (const path of ["/admin/queues", "/admin/queues/queue/ingress.idle-0002.C"]) {
      const res = await page.goto(`${base}${path}`);
      assert.match(res?.headers()["content-security-policy"] ?? "", /default-src 'self'.*frame-ancestors 'none'/, path);
      assert.equal(res?.headers()["x-frame-options"], "DENY");
      await page.getByText("ingress.idle-0002.C").first().waitFor({ timeout: 15_000 });
    }
    assert.deepEqual(consoleErrors, [], "no console errors in Bull Board");
    assert.deepEqual(cspViolations, [], "no Content-Security-Policy violations in Bull Board");

    // Another site (localhost is not 127.0.0.1) auto-posts a form to the admin API; the browser adds
    // the Basic credentials it has for the api. Nothing may change.
    const target = `${base}/v1/admin/tenants/urgentco/pause`;
    const evil: Server = createServer((_req, res) => {
      res.setHeader("content-type", "text/html");
      res.end(
        `<form method="POST" action="${target}" enctype="text/plain"><input name='{"x":"' value='"}'></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    try {
      const answered = page.waitForResponse((r) => r.url() === target, { timeout: 10_000 });
      await page.goto(`http://localhost:${(evil.address() as { port: number }).port}/`);
      const res = await answered;
      assert.equal(res.status(), 403, await res.text());
      assert.equal((await res.json()).error.code, "CROSS_SITE_REQUEST");
      assert.match((await res.request().allHeaders()).authorization ?? "", /^Basic /, "the browser did send its credentials");
    } finally {
      evil.close();
    }
    await sleep(300);
    assert.equal(d.p.registry.get("urgentco")?.policy.paused, false, "the tenant was not paused");
  });
});
