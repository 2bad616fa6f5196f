import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "./lib/config.ts";
import type { Platform } from "./platform.ts";
import { loadTenantsFile } from "./tenancy/tenantsFile.ts";

/**
 * Start-up chores of `npm start` and the api role: the admin token, the tenants
 * file, and development API keys for the example tenants.
 */

/** FAIRLANE_ADMIN_TOKEN, or (when allowed) one generated once and kept in the data folder. */
export function resolveAdminToken(config: Config, generate: boolean): { token: string; file?: string } {
  if (config.FAIRLANE_ADMIN_TOKEN) return { token: config.FAIRLANE_ADMIN_TOKEN };
  if (!generate) throw new Error("FAIRLANE_ADMIN_TOKEN is not set: admin surfaces are never open without a token");
  const file = join(config.FAIRLANE_DATA_DIR, "admin-token");
  return { token: secretFile(file), file };
}

/** A random secret generated once into `file` (mode 600, folder 700) and read back ever after. */
export function secretFile(file: string): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

/** Loads and validates the tenants file (throws naming tenant and field), then seeds Redis. */
export async function seedTenants(p: Platform, log: Logger): Promise<string[]> {
  const specs = loadTenantsFile(p.config.FAIRLANE_TENANTS_FILE);
  const written = await p.registry.seed(specs, p.config.FAIRLANE_TENANTS_MODE === "replace");
  log.info({ tenants: specs.size, written: written.length, mode: p.config.FAIRLANE_TENANTS_MODE }, "tenants file applied");
  return [...specs.keys()];
}

/**
 * Development-only API keys: for each tenant with no key yet, create one and
 * write it to <data dir>/dev-api-keys.env (mode 600) as
 * FAIRLANE_KEY_<TENANT>=flk_..., so `source` gives a shell the keys.
 */
export async function ensureDevKeys(p: Platform, tenants: string[]): Promise<string> {
  const file = join(p.config.FAIRLANE_DATA_DIR, "dev-api-keys.env");
  const lines = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.replace(/^export /, ""))
        .filter((l) => l.startsWith("FAIRLANE_KEY_"))
    : [];
  const known = new Map(lines.map((l) => [l.slice(0, l.indexOf("=")), l] as const));
  for (const tenant of tenants) {
    const name = `FAIRLANE_KEY_${tenant.toUpperCase().replace(/-/g, "_")}`;
    const valid = known.has(name) && (await p.apiKeys.lookup(known.get(name)!.slice(name.length + 1)));
    if (valid) continue;
    const { key } = await p.apiKeys.create(tenant, "development key (npm start)");
    known.set(name, `${name}=${key}`);
  }
  const header = "# DEVELOPMENT ONLY: API keys npm start created for the example tenants. Never use in production.\n";
  writeFileSync(file, `${header + [...known.values()].map((l) => `export ${l}`).join("\n")}\n`, {
    mode: 0o600,
  });
  return file;
}
