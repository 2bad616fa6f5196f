import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { startApiRole, type ApiRole } from "../../workers/api.ts";
import { REPO_ROOT } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { http } from "../helpers/api.ts";
import { adminPage } from "../helpers/browser.ts";
import { deployment, type Deployment } from "../helpers/deployment.ts";

/**
 * "Why is this tenant's work not running?" answered on the dashboard, at 1280 px, in real headless
 * Chromium, on a real deployment (one exec process with 10 slots, the dispatcher). Four tenants, each
 * held by something else: batchco by the Class C share of the pool (5 of 10 slots at batchMaxShare 0.5),
 * cappedco by its own mca of 2, pausedco by a pause, depco by its dependency `gw` marked down (its
 * workflows are parked). What really ran comes from the workflows' own start log (the observer), not
 * from Fairlane. Each row must name its constraint, every column must be visible at 1280 px (saved as
 * docs/screenshots/dashboard-why-1280.png), and depco's detail page must list its parked workflows with
 * their reasons and offer only the actions that apply.
 */
const TENANTS: Record<string, PolicySpec> = {
  batchco: { tier: "enterprise", mca: 20, burst: { mca: 20 } },
  cappedco: { tier: "professional", mca: 2, burst: { mca: 2 } },
  pausedco: { tier: "professional", paused: true },
  depco: { tier: "professional" },
};
const LONG = 120_000; // runs outlast the test: what holds the rest stays true while the page is read

describe("the dashboard says what holds each tenant's work", () => {
  let d: Deployment;
  let api: ApiRole;
  let base: string;
  let browser: Browser;
  let page: Page;
  const token = randomBytes(18).toString("hex");
  let consoleErrors: string[] = [];

  before(async () => {
    d = await deployment(TENANTS);
    d.start("exec", { FAIRLANE_CONCURRENCY: "10" });
    d.start("dispatcher");
    api = await startApiRole(d.p, token, createLogger("api", "warn"));
    base = `http://127.0.0.1:${api.port}`;
    await d.waitCapacity(10);
    ({ browser, page, errors: consoleErrors } = await adminPage(token, { width: 1280, height: 900 }));
  });
  after(async () => {
    await browser?.close();
    await api?.stop();
    await d?.close();
  });

  it("names the Class C share, the tenant's mca, a pause and a down dependency, with every column at 1280 px", {
    timeout: 120_000,
  }, async () => {
    const admin = { authorization: `Bearer ${token}` };
    assert.equal((await http(base, "PUT", "/v1/admin/dependencies/gw", { headers: admin, body: { state: "down" } })).status, 200);
    const run = (type: string, cls: string) => ({ type, class: cls, payload: { obs: d.obs, durationMs: LONG } });
    await d.admit(
      "batchco",
      Array.from({ length: 8 }, () => run("observed", "C")),
    );
    await d.admit(
      "cappedco",
      Array.from({ length: 4 }, () => run("observed", "B")),
    );
    await d.admit(
      "pausedco",
      Array.from({ length: 2 }, () => run("observed", "B")),
    );
    const parkedIds = await d.admit(
      "depco",
      Array.from({ length: 2 }, () => run("observed-gw", "B")),
    );

    // What really started, from the workflows' own log: 5 of batchco's 8 (half of 10 slots), 2 of cappedco's 4, nothing else.
    const deadline = Date.now() + 30_000;
    let starts: Record<string, number> = {};
    while (Date.now() < deadline) {
      const o = await d.observation();
      starts = {};
      for (const e of o.events) if (e.kind === "start") starts[e.tenant] = (starts[e.tenant] ?? 0) + 1;
      if (starts.batchco === 5 && starts.cappedco === 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(starts, { batchco: 5, cappedco: 2 }, "the observer's own start log");

    await page.goto(`${base}/dashboard/`);
    const state = (t: string) => page.locator(`tr[data-tenant="${t}"] td[data-field="state"]`);
    const says = async (t: string, re: RegExp) => {
      await page
        .waitForFunction(
          ([sel, src]) => new RegExp(src).test(document.querySelector(sel)?.textContent ?? ""),
          [`tr[data-tenant="${t}"] td[data-field="state"]`, re.source] as const,
          { timeout: 20_000 },
        )
        .catch(() => undefined);
      assert.match(await state(t).innerText(), re, t);
    };
    await says("batchco", /held: Class C share 5\/5 of pool default/);
    await says("cappedco", /AT CAP.*held: tenant at its mca: 2\/2/s);
    await says("pausedco", /PAUSED/);
    await says("depco", /held: 2 workflows parked on dependency gw \(down/);

    // Every column visible at 1280 px: the table needs no horizontal scroll.
    const fit = await page.evaluate(() => {
      const wrap = document.querySelector(".table-wrap")!;
      return { scroll: wrap.scrollWidth, client: wrap.clientWidth };
    });
    assert.ok(fit.scroll <= fit.client, `table ${fit.scroll} px in ${fit.client} px`);
    const shots = resolve(REPO_ROOT, "docs/screenshots");
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: resolve(shots, "dashboard-why-1280.png") });

    // depco's detail: its parked workflows, each with its reason; only the actions that apply.
    await page.locator('tr[data-tenant="depco"] button.tenant').click();
    await page.locator("#detail").waitFor({ state: "visible" });
    await page.waitForFunction(
      () =>
        document.querySelectorAll("#parked-rows tr").length === 2 &&
        !/none parked/.test(document.getElementById("parked-rows")?.textContent ?? ""),
      undefined,
      { timeout: 10_000 },
    );
    const rows = await page.locator("#parked-rows tr").allInnerTexts();
    for (const id of parkedIds)
      assert.ok(
        rows.some((r) => r.includes(id) && /gw/.test(r)),
        `${id} listed with its dependency: ${rows.join(" / ")}`,
      );
    assert.match(await page.locator("#detail-held").innerText(), /parked on dependency gw/);
    assert.deepEqual([await page.locator("#act-pause").isVisible(), await page.locator("#act-resume").isVisible()], [true, false]);
    // Only queues that held a job are linked: depco's B (where its work was admitted), not A or C.
    assert.deepEqual(await page.locator("#detail-links a").allInnerTexts(), ["ingress.depco.B"]);

    await page.goto(`${base}/dashboard/#tenant=pausedco`);
    await page.locator("#detail").waitFor({ state: "visible" });
    await page.waitForFunction(() => !(document.getElementById("act-resume") as HTMLButtonElement).hidden, undefined, { timeout: 10_000 });
    assert.deepEqual([await page.locator("#act-pause").isVisible(), await page.locator("#act-resume").isVisible()], [false, true]);
    assert.deepEqual(consoleErrors, []);
  });
});
