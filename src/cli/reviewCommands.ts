import type { Command } from "commander";
import { formatTable } from "./table.ts";
import { clientOf, print, run, withOperatorOptions, type OperatorOptions } from "./operatorOptions.ts";

/**
 * Human review queues, for on call (docs/operations.md "Reviewer queues"):
 * fairlane reviews [--pool p]                      items waiting per pool, tenant and class; claimed per pool
 *                                                  (GET /v1/admin/reviewer-pools)
 * fairlane reviewer-key create <pool> [--label l]  a reviewer key scoped to the pool, shown once: the key alone
 *                                                  on stdout, so `KEY=$(fairlane reviewer-key create p)` works
 *                                                  (POST /v1/admin/reviewer-pools/:pool/keys)
 * fairlane reviewer-key list <pool>                the pool's keys, never the keys themselves (GET .../keys)
 * fairlane reviewer-key revoke <pool> <keyId>      at once, on every api process (DELETE .../keys/:keyId)
 */
interface Depth {
  waiting: { pool: string; tenant: string; cls: string; waiting: number }[];
  claimed: Record<string, number>;
}

/** Only the pool asked for (or every pool), rows in the order on call reads them: pool, class A first, deepest first. */
export function depthOf(d: Depth, pool?: string): Depth {
  const waiting = d.waiting
    .filter((w) => !pool || w.pool === pool)
    .sort(
      (a, b) => a.pool.localeCompare(b.pool) || a.cls.localeCompare(b.cls) || b.waiting - a.waiting || a.tenant.localeCompare(b.tenant),
    );
  const claimed = Object.fromEntries(Object.entries(d.claimed).filter(([p]) => !pool || p === pool));
  return { waiting, claimed };
}

/** The depth table (rows with items waiting), then one line per pool: waiting in all, claimed by reviewers now. */
export function depthTables(d: Depth): string {
  const pools = [...new Set([...Object.keys(d.claimed), ...d.waiting.map((w) => w.pool)])].sort();
  if (!pools.length) return "no reviewer pool has had a review item\n";
  const total = (p: string) => d.waiting.filter((w) => w.pool === p).reduce((s, w) => s + w.waiting, 0);
  const waiting = d.waiting.filter((w) => w.waiting > 0);
  const rows = waiting.length
    ? formatTable(
        ["POOL", "TENANT", "CLASS", "WAITING"],
        waiting.map((w) => [w.pool, w.tenant, w.cls, w.waiting]),
      )
    : "no review items waiting\n";
  const perPool = formatTable(
    ["POOL", "WAITING", "CLAIMED"],
    pools.map((p) => [p, total(p), d.claimed[p] ?? 0]),
  );
  return `${rows}\n${perPool}`;
}

const poolPath = (pool: string) => `/v1/admin/reviewer-pools/${encodeURIComponent(pool)}/keys`;

export function registerReviewCommands(program: Command): void {
  withOperatorOptions(program.command("reviews").description("review items waiting per reviewer pool, tenant and class; claimed per pool"))
    .option("--pool <pool>", "only this reviewer pool")
    .action(
      run(async (o: OperatorOptions & { pool?: string }) => {
        const d = depthOf(await clientOf(o).call<Depth>("GET", "/v1/admin/reviewer-pools"), o.pool);
        print(o, d, () => depthTables(d));
      }),
    );

  const key = program.command("reviewer-key").description("reviewer keys: each claims and decides one pool's review items");

  withOperatorOptions(key.command("create").description("create a reviewer key for a pool (shown once)").argument("<pool>"))
    .option("--label <text>", "who or what holds it (shown by list)")
    .action(
      run(async (pool: string, o: OperatorOptions & { label?: string }) => {
        const d = await clientOf(o).call("POST", poolPath(pool), o.label === undefined ? {} : { label: o.label });
        if (o.json) {
          print(o, d, () => "");
          return;
        }
        process.stderr.write(`fairlane: reviewer key ${d.keyId} for pool ${d.pool}; it is shown only now, store it\n`);
        process.stdout.write(`${d.key}\n`);
      }),
    );

  withOperatorOptions(key.command("list").description("a pool's reviewer keys (ids and labels, never the keys)").argument("<pool>")).action(
    run(async (pool: string, o: OperatorOptions) => {
      const d = await clientOf(o).call("GET", poolPath(pool));
      print(o, d, () =>
        d.keys.length
          ? formatTable(
              ["KEY ID", "LABEL", "CREATED"],
              d.keys.map((k: { keyId: string; label?: string; createdAt: string }) => [k.keyId, k.label ?? "–", k.createdAt]),
            )
          : `${pool}: no reviewer keys\n`,
      );
    }),
  );

  withOperatorOptions(key.command("revoke").description("revoke a reviewer key at once").argument("<pool>").argument("<keyId>")).action(
    run(async (pool: string, keyId: string, o: OperatorOptions) => {
      await clientOf(o).call("DELETE", `${poolPath(pool)}/${encodeURIComponent(keyId)}`);
      print(o, { pool, keyId, revoked: true }, () => `${pool}: reviewer key ${keyId} revoked\n`);
    }),
  );
}
