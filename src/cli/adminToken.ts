import { existsSync, readFileSync } from "node:fs";
import { isIPv4 } from "node:net";
import { join, resolve } from "node:path";
import { REPO_ROOT } from "../lib/config.ts";

/**
 * Where the CLI's admin token comes from, first found wins:
 *   1. --token / --admin-token
 *   2. FAIRLANE_ADMIN_TOKEN
 *   3. the data folder of a local `npm start` (src/bootstrap.ts writes <data dir>/admin-token):
 *      only when the URL is this machine (a loopback host), so a token is never sent
 *      to a remote platform it does not belong to. The folders looked in, in order:
 *      FAIRLANE_DATA_DIR alone when it is set (it names the platform meant), else
 *      <repo root>/.fairlane, then <cwd>/.fairlane.
 * The token itself is never printed: `source` names where it came from (for
 * --verbose), and a failure says every place that was looked in.
 */
export type TokenSource = { token: string; source: string } | { error: string };

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1", "0.0.0.0"]);

export function isLocalUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    // 127.0.0.0/8 only as an address: "127.evil.example" is a remote name.
    return LOOPBACK.has(host) || (isIPv4(host) && host.startsWith("127."));
  } catch {
    return false;
  }
}

/** The admin-token files a local platform may have written, most specific first, without repeats. */
export function tokenFiles(env: NodeJS.ProcessEnv, cwd: string): string[] {
  const dirs = env.FAIRLANE_DATA_DIR ? [env.FAIRLANE_DATA_DIR] : [join(REPO_ROOT, ".fairlane"), join(cwd, ".fairlane")];
  return [...new Set(dirs.map((d) => resolve(cwd, d, "admin-token")))];
}

export function findAdminToken(o: { url: string; token?: string }, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): TokenSource {
  if (o.token) return { token: o.token, source: "--token" };
  if (env.FAIRLANE_ADMIN_TOKEN) return { token: env.FAIRLANE_ADMIN_TOKEN, source: "FAIRLANE_ADMIN_TOKEN" };
  const required = "an admin token is required: --token or FAIRLANE_ADMIN_TOKEN";
  if (!isLocalUrl(o.url)) return { error: `${required} (${o.url} is not this machine, so no local data folder was read)` };
  const files = tokenFiles(env, cwd);
  for (const file of files) {
    if (!existsSync(file)) continue;
    const token = readFileSync(file, "utf8").trim();
    if (token) return { token, source: file };
  }
  return {
    error: `${required}, or the admin-token file of a local npm start; looked in ${files.join(", ")}: none there (FAIRLANE_DATA_DIR names another data folder)`,
  };
}
