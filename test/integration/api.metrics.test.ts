import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, afterEach, before, describe, it } from "node:test";
import { loadConfig } from "../../src/lib/config.ts";
import { mayScrape, setMetricsAccess } from "../../src/observability/metricsEndpoint.ts";
import { startTestApi, type TestApi } from "../helpers/api.ts";

/** Who may read the api's /metrics under each FAIRLANE_METRICS_AUTH setting. */
describe("api /metrics access", () => {
  let api: TestApi;
  const metricsToken = randomBytes(18).toString("hex");
  const status = (authorization?: string) =>
    fetch(`${api.base}/metrics`, { headers: authorization ? { authorization } : {} }).then((r) => r.status);
  before(async () => {
    api = await startTestApi({ clinic: { tier: "free" } });
  });
  afterEach(() => setMetricsAccess({ mode: "admin" }));
  after(async () => {
    await api.stop();
  });

  it("by default: the admin token only; no credential or a tenant API key is 401", async () => {
    assert.equal(await status(), 401);
    assert.equal(await status(`Bearer ${api.keys.clinic}`), 401);
    assert.equal(await status(`Bearer ${metricsToken}`), 401, "no metrics token configured");
    assert.equal(await status(`Bearer ${api.adminToken}`), 200);
  });

  it("with FAIRLANE_METRICS_TOKEN: that token too, and it opens nothing else", async () => {
    setMetricsAccess({ mode: "admin", token: metricsToken });
    assert.equal(await status(`Bearer ${metricsToken}`), 200);
    assert.equal(await status(`Bearer ${api.adminToken}`), 200);
    assert.equal(await status(`Bearer ${api.keys.clinic}`), 401);
    assert.equal(await status(), 401);
    const admin = await fetch(`${api.base}/v1/admin/tenants`, { headers: { authorization: `Bearer ${metricsToken}` } });
    assert.equal(admin.status, 401);
  });

  it("with FAIRLANE_METRICS_AUTH=none: anyone who can reach it", async () => {
    setMetricsAccess({ mode: "none" });
    assert.equal(await status(), 200);
  });

  it("parses the settings at the edge, refusing a short metrics token", () => {
    const c = loadConfig({ FAIRLANE_METRICS_AUTH: "none", FAIRLANE_METRICS_MAX_TENANTS: "500" });
    assert.equal(c.FAIRLANE_METRICS_AUTH, "none");
    assert.equal(c.FAIRLANE_METRICS_MAX_TENANTS, 500);
    assert.equal(loadConfig({}).FAIRLANE_METRICS_AUTH, "admin");
    assert.throws(() => loadConfig({ FAIRLANE_METRICS_TOKEN: "short" }), /FAIRLANE_METRICS_TOKEN/);
    assert.throws(() => loadConfig({ FAIRLANE_METRICS_AUTH: "open" }), /FAIRLANE_METRICS_AUTH/);
    assert.equal(mayScrape(`Bearer ${api.keys.clinic}`, api.adminToken, { mode: "admin", token: metricsToken }), false);
  });
});
