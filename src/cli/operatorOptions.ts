import { type Command, InvalidArgumentError } from "commander";
import { AdminApiError, AdminClient } from "./adminClient.ts";

/**
 * What every on-call command shares: where the API is, the admin credential,
 * who acts, `--json` for scripts (the API's answer as is) instead of a table.
 * Errors print the API's message (and the field it names) on stderr and exit 1;
 * a missing confirmation (--yes) exits 2.
 */
export interface OperatorOptions {
  url: string;
  token?: string;
  operator?: string;
  json?: boolean;
}

export function withOperatorOptions(c: Command): Command {
  return c
    .option("--url <url>", "API base URL (env FAIRLANE_URL)", process.env.FAIRLANE_URL ?? "http://127.0.0.1:3000")
    .option("--token <token>", "admin token (env FAIRLANE_ADMIN_TOKEN)", process.env.FAIRLANE_ADMIN_TOKEN)
    .option("--operator <name>", "who acts, for the audit log (default $USER)", process.env.USER)
    .option("--json", "print the API's JSON answer instead of a table");
}

export function clientOf(o: OperatorOptions): AdminClient {
  if (!o.token) throw new AdminApiError(0, "NO_TOKEN", "an admin token is required: --token or FAIRLANE_ADMIN_TOKEN");
  return new AdminClient({ url: o.url, token: o.token, operator: o.operator });
}

export function print(o: OperatorOptions, data: unknown, human: () => string): void {
  process.stdout.write(o.json ? JSON.stringify(data, null, 2) + "\n" : human());
}

/** Wraps an action: API errors become one readable line and exit code 1. */
export function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (!(err instanceof AdminApiError)) throw err;
      const fields = Array.isArray(err.details) ? (err.details as { field?: string; message?: string }[]).map((d) => `\n  ${d.field}: ${d.message}`).join("") : "";
      process.stderr.write(`fairlane: ${err.status ? `${err.status} ${err.code}: ` : ""}${err.message}${fields}\n`);
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

export const ms = (x: number | null | undefined) => (x === null || x === undefined ? "–" : x >= 1000 ? `${(x / 1000).toFixed(1)}s` : `${Math.round(x)}ms`);
