import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { productionLayout } from "../../src/topology/layout.ts";

/** docker compose cannot run here: check the production layout's shape and that it runs real entrypoints. */
describe("docker-compose.yml", () => {
  const doc = parse(readFileSync("docker-compose.yml", "utf8"), { merge: true }) as {
    services: Record<string, { command?: string[]; environment?: Record<string, string>; image?: string; deploy?: { replicas?: number } }>;
  };

  it("has Redis with AOF and every process role as a service", () => {
    const services = Object.keys(doc.services);
    for (const s of ["redis", "api", "dispatcher", "exec-default", "exec-eu", "health", "recovery"]) assert.ok(services.includes(s), s);
    assert.ok(doc.services.redis!.command!.includes("--appendonly"));
  });

  it("starts each role from an entrypoint that exists, with REDIS_URL", () => {
    for (const [name, svc] of Object.entries(doc.services)) {
      if (name === "redis") continue;
      const entry = svc.command!.find((c) => c.startsWith("workers/"))!;
      assert.ok(existsSync(entry), `${name}: ${entry}`);
      assert.equal(svc.environment!.REDIS_URL, "redis://redis:6379", name);
    }
  });

  it("is the layout npm run topology starts locally: the same roles, pools and copies", () => {
    const fromCompose = Object.entries(doc.services)
      .filter(([name]) => name !== "redis")
      .flatMap(([, svc]) => {
        const role = svc.command!.find((c) => c.startsWith("workers/"))!.replace(/^workers\/|\.ts$/g, "");
        const pool = svc.environment?.FAIRLANE_POOL;
        return Array.from({ length: svc.deploy?.replicas ?? 1 }, () => (pool ? `${role}:${pool}` : role));
      })
      .sort();
    const local = productionLayout({ apiPort: 3001, execConcurrency: 20 })
      .map((s) => (s.env.FAIRLANE_POOL ? `${s.role}:${s.env.FAIRLANE_POOL}` : s.role))
      .sort();
    assert.deepEqual(local, fromCompose);
  });
});
