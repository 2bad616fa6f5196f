import { type Command, InvalidArgumentError, Option } from "commander";
import { FairlaneApiError, FairlaneWaitError } from "../client/index.ts";
import { AdminApiError, AdminClient } from "./adminClient.ts";
import { findAdminToken } from "./adminToken.ts";

/**
 * What every on-call command shares: where the API is, the admin credential
 * (--token, FAIRLANE_ADMIN_TOKEN, or a local npm start's data folder: adminToken.ts),
 * who acts, `--json` for scripts (the API's answer as is) instead of a table,
 * `--verbose` to say where the token came from (never the token).
 * Errors print the API's message (and the field it names) on stderr and exit 1;
 * a missing confirmation (--yes) exits 2.
 */
export interface OperatorOptions {
  url: string;
  token?: string;
  adminToken?: string;
  operator?: string;
  json?: boolean;
  verbose?: boolean;
}

export function withOperatorOptions(c: Command): Command {
  return c
    .option("--url <url>", "API base URL (env FAIRLANE_URL)", process.env.FAIRLANE_URL ?? "http://127.0.0.1:3000")
    .option("--token <token>", "admin token (env FAIRLANE_ADMIN_TOKEN; on this machine, else <data dir>/admin-token of npm start)")
    .addOption(new Option("--admin-token <token>", "same as --token").hideHelp())
    .option("--operator <name>", "who acts, for the audit log (default $USER)", process.env.USER)
    .option("--json", "print the API's JSON answer instead of a table")
    .option("--verbose", "say where the admin token came from");
}

export function clientOf(o: OperatorOptions): AdminClient {
  const found = findAdminToken({ url: o.url, token: o.token ?? o.adminToken });
  if ("error" in found) throw new AdminApiError(0, "NO_TOKEN", found.error);
  if (o.verbose) process.stderr.write(`fairlane: admin token from ${found.source}\n`);
  return new AdminClient({ url: o.url, token: found.token, operator: o.operator, tokenSource: found.source });
}

export function print(o: OperatorOptions, data: unknown, human: () => string): void {
  process.stdout.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

const fieldLines = (details: unknown) =>
  Array.isArray(details) ? (details as { field?: string; message?: string }[]).map((d) => `\n  ${d.field}: ${d.message}`).join("") : "";

/** Wraps an action: API errors (admin or producer) and a wait given up become one readable line and exit code 1. */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof AdminApiError)
        process.stderr.write(`fairlane: ${err.status ? `${err.status} ${err.code}: ` : ""}${err.message}${fieldLines(err.details)}\n`);
      else if (err instanceof FairlaneApiError || err instanceof FairlaneWaitError)
        process.stderr.write(`fairlane: ${err.message}${err instanceof FairlaneApiError ? fieldLines(err.details) : ""}\n`);
      else throw err;
      process.exitCode = 1;
    }
  };
}

export function needYes(o: { yes?: boolean }, what: string): boolean {
  if (o.yes) return true;
  process.stderr.write(`fairlane: ${what}; add --yes to confirm\n`);
  process.exitCode = 2;
  return false;
}

export const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
};

export const nonNegNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number >= 0");
  return n;
};

const DURATION_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "500ms", "30s", "5m", "1h", "7d" -> ms. */
export const duration = (v: string) => {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(v);
  if (!m) throw new InvalidArgumentError('must be a number and a unit ms, s, m, h or d, e.g. "30s" or "5m"');
  return Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS];
};

export const ms = (x: number | null | undefined) =>
  x === null || x === undefined ? "–" : x >= 1000 ? `${(x / 1000).toFixed(1)}s` : `${Math.round(x)}ms`;
