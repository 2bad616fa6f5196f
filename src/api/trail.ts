import { once } from "node:events";
import type { Request, Response, Router } from "express";
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import { invalidRequest } from "../lib/errors.ts";
import { formatIssues, trailRetentionMs, type TenantPolicy } from "../tenancy/policy.ts";
import { readTrail, TRAIL_MAX_LIMIT, TrailQuerySchema, type TrailQuery } from "../workflows/trail.ts";

/** Whose trail a request reads, and in which cells: the tenant of the key (producer) or of the path (admin). */
export interface TrailOwner {
  tenant: string;
  policy: TenantPolicy;
  cells: CellKeys[];
}

export interface TrailDeps {
  redis: Redis;
  clock: Clock;
  ownerOf(req: Request): Promise<TrailOwner>;
}

function query(req: Request): TrailQuery {
  const q = TrailQuerySchema.safeParse(req.query);
  if (!q.success) {
    const issues = q.error.issues.map((i) => ({ field: i.path.join(".") || "(query)", message: i.message }));
    throw invalidRequest(`invalid audit query: ${formatIssues(issues)}`, issues);
  }
  return q.data;
}

/**
 * GET <base> (a page, oldest first, `nextCursor`) and GET <base>/export (every entry from `cursor` or
 * `since` as NDJSON, one object per line, streamed a page at a time; resume after the last `id` written
 * with `?cursor=` and no entry is written twice or missed). Only the owner's trail, never another tenant's.
 */
export function trailRoutes(r: Router, base: string, d: TrailDeps): void {
  r.get(base, async (req, res) => {
    const q = query(req);
    const o = await d.ownerOf(req);
    res.setHeader("Cache-Control", "no-store");
    res.json(await readTrail(d.redis, o.cells, o.tenant, q, trailRetentionMs(o.policy), d.clock.now()));
  });

  r.get(`${base}/export`, async (req, res) => {
    const q = query(req);
    const o = await d.ownerOf(req);
    res.setHeader("Content-Type", "application/x-ndjson; charset=utf-8");
    res.setHeader("Cache-Control", "no-store");
    let gone = false;
    res.on("close", () => {
      gone = true;
    });
    let cursor = q.cursor;
    for (;;) {
      const page = await readTrail(
        d.redis,
        o.cells,
        o.tenant,
        { ...q, cursor, limit: TRAIL_MAX_LIMIT },
        trailRetentionMs(o.policy),
        d.clock.now(),
      );
      for (const e of page.entries) if (!res.write(`${JSON.stringify(e)}\n`)) await drained(res);
      if (gone || !page.nextCursor) break;
      cursor = page.nextCursor;
    }
    res.end();
  });
}

async function drained(res: Response): Promise<void> {
  if (res.destroyed) return;
  await Promise.race([once(res, "drain"), once(res, "close")]);
}
