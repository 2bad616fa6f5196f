import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { startApiRole, type ApiRole } from "../../workers/api.ts";
import { loadConfig } from "../../src/lib/config.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { openPlatform, type Platform } from "../../src/platform.ts";
import type { PolicySpec } from "../../src/tenancy/policy.ts";
import { freshPrefix, testRedisUrl } from "./redis.ts";

export interface TestApi {
  base: string;
  adminToken: string;
  platform: Platform;
  bullBoard: ApiRole["bullBoard"];
  /** Every log line the api wrote, as text. */
  logs: string[];
  keys: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The api role in this process on a real Redis, a fresh key prefix and a free
 * port, with the given tenants and one API key each.
 */
/** A role's logger whose every line is kept in `lines` (tests grep them: nothing leaked, logged once). */
export function capturedLogger(role: string): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger(role, "info", sink), lines };
}

export async function startTestApi(tenants: Record<string, PolicySpec>, env: Record<string, string> = {}): Promise<TestApi> {
  const adminToken = randomBytes(18).toString("hex");
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: freshPrefix(), PORT: "0", FAIRLANE_ADMIN_TOKEN: adminToken, ...env });
  const { log, lines: logs } = capturedLogger("api");
  const platform = await openPlatform(config, await testRedisUrl(), log);
  await platform.registry.seed(new Map(Object.entries(tenants)), true);
  const keys: Record<string, string> = {};
  for (const t of Object.keys(tenants)) keys[t] = (await platform.apiKeys.create(t)).key;
  const role: ApiRole = await startApiRole(platform, adminToken, log);
  return {
    base: `http://127.0.0.1:${role.port}`,
    adminToken,
    platform,
    bullBoard: role.bullBoard,
    logs,
    keys,
    async stop() {
      await role.stop();
      await platform.close();
    },
  };
}

/** fetch with JSON in and out; never throws on HTTP status. */
export async function http(
  base: string,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
