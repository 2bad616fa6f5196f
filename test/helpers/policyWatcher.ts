/**
 * A second process for the live-policy test: opens its own PolicyRegistry on
 * the same Redis and prefix, and prints `{"mca":n,"at":ms}` whenever the mca
 * of tenant argv[4] changes. Usage: policyWatcher.ts <redisUrl> <prefix> <tenant>
 */
import { createKeys } from "../../queues/keys.ts";
import { connect } from "../../src/lib/redis.ts";
import { PolicyRegistry } from "../../src/tenancy/registry.ts";

const [url, prefix, tenant] = process.argv.slice(2) as [string, string, string];
const redis = connect(url);
const registry = new PolicyRegistry(redis, createKeys(prefix), 250);
await registry.start();
let last: number | undefined;
const tick = () => {
  const mca = registry.get(tenant)?.policy.mca;
  if (mca !== last) {
    last = mca;
    process.stdout.write(`${JSON.stringify({ mca: mca ?? null, at: Date.now() })}\n`);
  }
};
tick();
setInterval(tick, 10);
process.on("SIGTERM", () => process.exit(0));
