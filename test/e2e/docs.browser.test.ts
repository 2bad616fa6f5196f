import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { http, startTestApi, type TestApi } from "../helpers/api.ts";
import { CHROMIUM_ARGS, chromiumPath } from "../helpers/browser.ts";

/**
 * /docs renders the OpenAPI document in real headless Chromium: Swagger UI from this origin (no request
 * leaves it), every operation of /openapi.json listed, no console error and no Content-Security-Policy
 * violation; an operation expands to show its responses.
 */
describe("API reference at /docs in a real browser", () => {
  let api: TestApi;
  let browser: Browser;
  before(async () => {
    api = await startTestApi({ clinic: { tier: "free" } });
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await api?.stop();
  });

  it("lists every operation, loads nothing from elsewhere, and breaks no policy", { timeout: 60_000 }, async () => {
    const doc = (await http(api.base, "GET", "/openapi.json")).body as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    const page = await browser.newPage();
    const errors: string[] = [];
    const foreign: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
      if (!r.url().startsWith(api.base) && !r.url().startsWith("data:")) foreign.push(r.url());
    });
    await page.exposeFunction("__csp", (v: string) => errors.push(`CSP: ${v}`));
    await page.addInitScript(() =>
      document.addEventListener("securitypolicyviolation", (e) =>
        (window as unknown as { __csp(v: string): void }).__csp(`${e.violatedDirective} ${e.blockedURI}`),
      ),
    );
    await page.goto(`${api.base}/docs`);
    await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
    assert.equal(await page.locator(".opblock").count(), operations);
    assert.match(await page.locator(".info .title").innerText(), /Fairlane API/);

    const list = page.locator(".opblock-get", { hasText: "List the tenant's workflows" });
    await list.locator(".opblock-summary").click();
    await list.locator(".responses-table").waitFor({ timeout: 10_000 });
    assert.match(await list.locator(".responses-table").innerText(), /nextCursor/);
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
