import type { Request, Router } from "express";
import type { Redis } from "ioredis";
import type { z } from "zod";
import type { CellKeys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import { invalidRequest } from "../lib/errors.ts";
import { formatIssues, trailRetentionMs, type TenantPolicy } from "../tenancy/policy.ts";
import { endedPage, ExportQuerySchema } from "../workflows/export.ts";
import { readTrail, TRAIL_MAX_LIMIT, TrailQuerySchema } from "../workflows/trail.ts";
import { streamPages } from "./ndjson.ts";

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

function query<T>(req: Request, schema: z.ZodType<T>, what: string): T {
  const q = schema.safeParse(req.query);
  if (!q.success) {
    const issues = q.error.issues.map((i) => ({ field: i.path.join(".") || "(query)", message: i.message }));
    throw invalidRequest(`invalid ${what} query: ${formatIssues(issues)}`, issues);
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
    const q = query(req, TrailQuerySchema, "audit");
    const o = await d.ownerOf(req);
    res.setHeader("Cache-Control", "no-store");
    res.json(await readTrail(d.redis, o.cells, o.tenant, q, trailRetentionMs(o.policy), d.clock.now()));
  });

  r.get(`${base}/export`, async (req, res) => {
    const q = query(req, TrailQuerySchema, "audit");
    const o = await d.ownerOf(req);
    await streamPages(res, q.cursor, async (cursor) => {
      const p = await readTrail(
        d.redis,
        o.cells,
        o.tenant,
        { ...q, cursor, limit: TRAIL_MAX_LIMIT },
        trailRetentionMs(o.policy),
        d.clock.now(),
      );
      return { items: p.entries, nextCursor: p.nextCursor };
    });
  });
}

/**
 * GET <path>: the owner's ended workflows as NDJSON, each once, in the order they ended, found by their
 * "ended" entries in its trail (src/workflows/export.ts); resume after the last `cursor` written.
 */
export function endedExportRoute(r: Router, path: string, d: TrailDeps): void {
  r.get(path, async (req, res) => {
    const q = query(req, ExportQuerySchema, "export");
    const o = await d.ownerOf(req);
    await streamPages(res, q.cursor, async (cursor) => {
      const p = await endedPage(d.redis, o.cells, o.tenant, { ...q, cursor }, trailRetentionMs(o.policy), d.clock.now());
      return { items: p.lines, nextCursor: p.nextCursor };
    });
  });
}
