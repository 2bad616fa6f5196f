/**
 * The simulated Downstream's HTTP edge (simulator.ts), on node:http alone: JSON answers, small JSON
 * bodies, headers, the refusal of cross-site /admin writes, and HttpError, which `handle` turns into
 * a JSON answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

const BODY_LIMIT = 64 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "BAD_REQUEST", "malformed resource name");
  }
}

/**
 * Why an /admin write must be refused, or null. The simulator listens on
 * loopback without credentials, and any web page a developer has open may post
 * to 127.0.0.1: a cross-site form could switch an outage on. So a write needs a
 * JSON body (no HTML form sends one, and a page's cross-origin fetch of JSON
 * needs a CORS preflight this server never answers) and no cross-site
 * Sec-Fetch-Site or foreign Origin. Its callers (tests, bench, scripts) send JSON.
 */
export function adminWriteRefusal(req: IncomingMessage): string | null {
  const site = header(req, "sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") return `a ${site.slice(0, 20)} request may not change the simulator`;
  const origin = header(req, "origin");
  if (site === null && origin !== null) {
    let same = false;
    try {
      same = new URL(origin).host === (req.headers.host ?? "");
    } catch {
      /* "null" or unparsable: not this origin */
    }
    if (!same) return "a request from another origin may not change the simulator";
  }
  const type = (header(req, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") return "admin writes need Content-Type: application/json";
  return null;
}

export function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined || one === "" ? null : one;
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A small JSON object body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new HttpError(413, "TOO_LARGE", `body over ${BODY_LIMIT} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, "BAD_REQUEST", "body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new HttpError(400, "BAD_REQUEST", "body must be a JSON object");
  return parsed as Record<string, unknown>;
}
