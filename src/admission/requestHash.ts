import { createHash } from "node:crypto";
import type { WorkflowRequest } from "./schema.ts";

/**
 * The hash kept with an idempotency key (queues/lua/includes/admit.lua): what defines
 * a request, canonically. Type, class (after its default), payload, and the
 * producer's deadline as epoch ms, so `{"type":"x"}` and
 * `{"type":"x","class":"B"}` are one request, object keys in any order are
 * one request, and "…Z" and "…+00:00" are one deadline. The idempotency key
 * itself is not part of it. A key reused with a different request is refused
 * (409 IDEMPOTENCY_KEY_REUSED) instead of answering with a workflow that is
 * not what was asked for.
 */
export function requestHash(req: WorkflowRequest, deadlineMs: number | undefined): string {
  const canonical = canonicalJson({ type: req.type, class: req.class, payload: req.payload, deadlineAt: deadlineMs ?? null });
  return createHash("sha256").update(canonical).digest("hex");
}

/** JSON with object keys sorted. Admission has bounded the depth (jsonShape.ts), so recursion is safe. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
