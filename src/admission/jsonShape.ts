import type { FieldIssue } from "./schema.ts";

/**
 * What a workflow request's JSON may hold beyond its schema: only what
 * survives the trip through Redis, the runtime and Bull Board unchanged.
 *
 *   depth        at most MAX_JSON_DEPTH levels of objects and arrays under the
 *                request (its payload `{}` is level 1). V8's JSON.parse is
 *                iterative and takes any depth, but JSON.stringify, zod and
 *                Bull Board recurse: ~4,150 levels threw RangeError (a 500)
 *                and far fewer broke Bull Board's view of the queue.
 *   __proto__    JSON.parse keeps it as an own key; any object copy or spread
 *                (zod's record parse, a handler's `{...payload}`) turns it
 *                into the prototype, and it vanishes from the stored payload.
 *   non-finite   JSON has no Infinity: 1e400 parses to Infinity and is stored
 *                as null.
 * Keys like "constructor" and "prototype" round-trip unchanged and are fine.
 *
 * The walk is iterative (an explicit stack), so no input depth can overflow
 * the call stack, and it stops after `maxIssues` findings.
 */
export const MAX_JSON_DEPTH = 64;

interface Node {
  value: unknown;
  key: string | number;
  parent: Node | undefined;
  depth: number;
}

const SEGMENT_CHARS = 40;
const PATH_CHARS = 300;

/** "payload.a.0.b" (zod's field format), each key and the whole path shortened for the error. */
function pathOf(node: Node | undefined): string {
  const parts: string[] = [];
  for (let n = node; n?.parent; n = n.parent) {
    const k = String(n.key);
    parts.push(k.length > SEGMENT_CHARS ? `${k.slice(0, SEGMENT_CHARS)}…` : k);
  }
  const path = parts.reverse().join(".") || "(body)";
  return path.length > PATH_CHARS ? `${path.slice(0, PATH_CHARS / 2)}…${path.slice(-PATH_CHARS / 2)}` : path;
}

export function jsonShapeIssues(root: unknown, maxDepth = MAX_JSON_DEPTH, maxIssues = 10): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const stack: Node[] = [{ value: root, key: "", parent: undefined, depth: 0 }];
  while (stack.length && issues.length < maxIssues) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === "number") {
      if (!Number.isFinite(v))
        issues.push({ field: pathOf(node), message: "is not a finite number (JSON has no Infinity or NaN; it would be stored as null)" });
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    // The request object itself is level 0; each object or array under it is one level deeper.
    const depth = node.parent ? node.depth + 1 : 0;
    if (depth > maxDepth) {
      issues.push({ field: pathOf(node), message: `nests deeper than ${maxDepth} levels of objects and arrays` });
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: node, depth });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      const child: Node = { value: (v as Record<string, unknown>)[k], key: k, parent: node, depth };
      if (k === "__proto__") {
        issues.push({
          field: pathOf(child),
          message: 'the key "__proto__" is not allowed (it would be dropped: the payload could not be stored as sent)',
        });
        continue;
      }
      stack.push(child);
    }
  }
  return issues;
}
