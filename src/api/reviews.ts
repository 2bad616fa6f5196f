import express, { Router, type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import { POOL_ID } from "../../queues/names.ts";
import { FairlaneError, invalidRequest, notFound, unauthorized } from "../lib/errors.ts";
import { bearer } from "../lib/adminAuth.ts";
import type { Clock } from "../lib/clock.ts";
import type { ReviewerKeys } from "../tenancy/apiKeys.ts";
import type { ReviewQueues } from "../workflows/reviewQueues.ts";
import type { AuditLog } from "./audit.ts";
import { body } from "./operatorAdmin.ts";

/**
 * Human review over HTTP (docs/api.md "Human review").
 *   Reviewers, with a reviewer key (`flr_`) scoped to one pool:
 *     GET  /v1/reviews/next?leaseSec=    claims the pool's next item, fairly across tenants: 200 item | 204
 *     GET  /v1/reviews/:id               an item of the pool (404 for any other pool's, or none)
 *     POST /v1/reviews/:id { decision: approve | reject | escalate, note? }   by the claim's holder (409 otherwise)
 *   Admin (/v1/admin, admin token):
 *     GET    /reviewer-pools                       waiting items per pool, tenant and class; claimed per pool
 *     GET    /reviewer-pools/:pool/keys            the pool's reviewer keys (never the keys themselves)
 *     POST   /reviewer-pools/:pool/keys { label? } 201 { keyId, key, pool } (the key is shown once)
 *     DELETE /reviewer-pools/:pool/keys/:keyId     revokes at once
 */
export interface ReviewDeps {
  reviewerKeys: ReviewerKeys;
  queues: ReviewQueues;
  clock: Clock;
  audit: AuditLog;
  bodyLimit: string;
}

declare module "express-serve-static-core" {
  interface Request {
    /** The reviewer key's pool: everything a reviewer reads or decides is of this pool. */
    reviewerPool?: string;
  }
}

export const Claim = z.strictObject({
  leaseSec: z.coerce
    .number()
    .int()
    .min(1)
    .max(3600)
    .default(300)
    .meta({ description: "How long the claim holds, in seconds (default 300): then the item goes back in line." }),
});
export const Decision = z.strictObject({
  decision: z.enum(["approve", "reject", "escalate"]),
  note: z
    .string()
    .max(2000)
    .nullable()
    .optional()
    .meta({ description: "For the workflow (approve, reject) or the next reviewer (escalate)." }),
});
const KeyRequest = z.strictObject({ label: z.string().max(100).optional() });

/** Reviewer auth: the pool comes from the key, never from the request. */
function reviewerAuth(keys: ReviewerKeys) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const key = bearer(req);
    const record = key ? await keys.lookup(key) : null;
    if (!record) throw unauthorized("a valid reviewer key is required (Authorization: Bearer flr_...)");
    req.reviewerPool = record.pool;
    req.keyId = record.keyId;
    next();
  };
}

/** /v1/reviews: what a reviewer does. */
export function reviewerRouter(d: ReviewDeps): Router {
  const r = Router();
  r.use(reviewerAuth(d.reviewerKeys), express.json({ limit: d.bodyLimit, strict: true }));
  const claimant = (req: Request) => `reviewer:${req.keyId}`;

  r.get("/next", async (req, res) => {
    const { leaseSec } = body(Claim, req.query, "claim");
    const item = await d.queues.claim(req.reviewerPool!, claimant(req), d.clock.now(), leaseSec * 1000);
    if (!item) {
      res.status(204).end();
      return;
    }
    res.json(item);
  });

  r.get("/:id", async (req, res) => {
    const found = await d.queues.find(req.reviewerPool!, String(req.params.id));
    if (!found) throw notFound("review");
    res.json(found.item);
  });

  r.post("/:id", async (req, res) => {
    const b = body(Decision, req.body, "decision");
    const id = String(req.params.id);
    const by = { claimant: claimant(req), keyId: req.keyId! };
    const out = await d.queues.decide(req.reviewerPool!, id, by, b.decision, b.note ?? null, d.clock.now());
    if (out.kind === "notfound") throw notFound("review");
    if (out.kind === "notclaimed")
      throw new FairlaneError("REVIEW_NOT_CLAIMED", "claim the item first (GET /v1/reviews/next): it is not held by this key now", 409);
    res.json({ id, decision: b.decision, ...(out.kind === "escalated" ? { state: "pending", pool: out.pool } : { state: "decided" }) });
  });
  return r;
}

function poolParam(req: Request): string {
  const p = String(req.params.pool);
  if (!POOL_ID.test(p)) throw invalidRequest(`pool must match ${POOL_ID}`, [{ field: "pool", message: "invalid pool name" }]);
  return p;
}

/** /v1/admin/reviewer-pools: reviewer keys and queue depths. Runs after adminAuth. */
export function reviewerPoolsAdminRouter(d: ReviewDeps): Router {
  const r = Router();
  r.use("/reviewer-pools", express.json({ limit: d.bodyLimit, strict: true }));

  r.get("/reviewer-pools", async (_req, res) => {
    res.json(await d.queues.depth());
  });

  r.get("/reviewer-pools/:pool/keys", async (req, res) => {
    res.json({ keys: await d.reviewerKeys.list(poolParam(req)) });
  });

  r.post("/reviewer-pools/:pool/keys", async (req, res) => {
    const pool = poolParam(req);
    const { label } = body(KeyRequest, req.body, "key request");
    const created = await d.reviewerKeys.create(pool, label);
    await d.audit.record(req.operator!, "reviewer-key.create", pool, { keyId: created.keyId });
    res.status(201).json({ ...created, pool });
  });

  r.delete("/reviewer-pools/:pool/keys/:keyId", async (req, res) => {
    const pool = poolParam(req);
    const keyId = String(req.params.keyId);
    if (!/^[0-9a-f]{12}$/.test(keyId) || !(await d.reviewerKeys.revoke(pool, keyId))) throw notFound("key");
    await d.audit.record(req.operator!, "reviewer-key.revoke", pool, { keyId });
    res.status(204).end();
  });
  return r;
}
