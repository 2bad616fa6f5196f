/**
 * Class A under `npm start` in its first minute (issue 20): boots `workers/all.ts` (every role in one
 * process, the embedded Redis, the simulated downstream, the example tenants and their dev keys) in a
 * fresh data folder, and from the moment it prints its banner sends two tenants' Class A
 * `eligibility-check` workflows over HTTP for 60 s (lakeside-clinics every 250 ms, cedar-practice every
 * 500 ms). With `storm`, meridian-health submits 1,200 Class C `prior-auth` workflows (3 steps × 6
 * calls) at boot as well. Prints Class A enqueue→start (the records' enqueuedAt and startedAt) as one
 * JSON line. Run each mode alone on the machine, several times, and compare the p99s:
 *   node --import tsx test/bench/startBoot.ts idle
 *   node --import tsx test/bench/startBoot.ts storm
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ROLE_NODE_FLAGS } from "../../src/lib/roles.ts";
import { quantile } from "./lib/stats.ts";

const storm = process.argv[2] === "storm";
const dir = mkdtempSync(join(tmpdir(), "fl-start-"));
const port = 23_000 + Math.floor(Math.random() * 5_000);
const child = spawn(process.execPath, [...ROLE_NODE_FLAGS, "--import", "tsx", "workers/all.ts"], {
  env: {
    ...process.env,
    FAIRLANE_DATA_DIR: dir,
    PORT: String(port),
    FAIRLANE_REDIS_PORT: String(port + 10_000),
    FAIRLANE_DOWNSTREAM_PORT: String(port + 5_000),
    LOG_LEVEL: "warn",
  },
  stdio: ["ignore", "pipe", "ignore"],
});
let banner = "";
child.stdout.on("data", (d) => {
  banner += d;
});
const t0 = Date.now();
while (!banner.includes("Fairlane is running")) {
  if (Date.now() - t0 > 60_000) throw new Error("npm start did not come up in 60 s");
  await sleep(50);
}
const bootMs = Date.now() - t0;
const keys = readFileSync(join(dir, "dev-api-keys.env"), "utf8");
const keyOf = (name: string) => new RegExp(`${name}=['"]?([^'"\\s]+)`).exec(keys)![1]!;
const base = `http://127.0.0.1:${port}`;
const post = (key: string, path: string, body: unknown) =>
  fetch(base + path, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  }).then((r) => r.json() as Promise<{ id?: string }>);

const urgent: [string, string][] = [];
const sendA = async (key: string) => {
  const r = await post(key, "/v1/workflows", { type: "eligibility-check", class: "A", payload: { latencyMs: 50 } });
  if (r.id) urgent.push([r.id, key]);
};
if (storm) {
  const meridian = keyOf("FAIRLANE_KEY_MERIDIAN_HEALTH");
  const batch = Array.from({ length: 100 }, () => ({ type: "prior-auth", class: "C", payload: { steps: 3, fanout: 6, latencyMs: 200 } }));
  void (async () => {
    for (let i = 0; i < 12; i++) await post(meridian, "/v1/workflows/bulk", { workflows: batch });
  })();
}
const [lake, cedar] = [keyOf("FAIRLANE_KEY_LAKESIDE_CLINICS"), keyOf("FAIRLANE_KEY_CEDAR_PRACTICE")];
for (let tick = 0; Date.now() - t0 - bootMs < 60_000; tick++) {
  await Promise.all([sendA(lake), tick % 2 === 0 ? sendA(cedar) : undefined]);
  await sleep(250);
}
await sleep(5_000);
const waits: number[] = [];
let notCompleted = 0;
for (const [id, key] of urgent) {
  const v = (await fetch(`${base}/v1/workflows/${id}`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json())) as {
    state: string;
    enqueuedAt: string;
    startedAt: string | null;
  };
  if (v.startedAt) waits.push(Date.parse(v.startedAt) - Date.parse(v.enqueuedAt));
  if (v.state !== "completed") notCompleted++;
}
waits.sort((a, b) => a - b);
const q = (p: number) => Math.round(quantile(waits, p));
console.log(
  JSON.stringify({ storm, bootMs, samples: waits.length, notCompleted, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: waits.at(-1) }),
);
child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
rmSync(dir, { recursive: true, force: true });
