/**
 * A simulated downstream service: a FHIR-gateway-like API whose backing
 * database has a fixed connection pool. Example workflows, tests and benchmarks
 * call it to measure whether Fairlane protects the systems behind it: how many
 * requests were in flight at once (globally and per tenant), how many the pool
 * turned away, whether retries re-executed work, which deadlines arrived.
 *
 *   GET|POST /fhir/:resource[/...]  headers X-Tenant-Id, Idempotency-Key, X-Request-Deadline;
 *                                   ?latencyMs=N overrides the latency of this request
 *   POST /model/stream              {tokens?, tokenMs?: {min,max}}: a token per chunk, text/plain
 *   POST /v1/chat/completions       an OpenAI-compatible model with a deterministic agent policy, for
 *   GET  /v1/models                 the Vercel AI SDK; Bearer llmApiKey if set (see chatCompletions.ts)
 *   GET  /health                    200 {ok:true}; 503 during an outage
 *   POST /admin/outage {on}  POST /admin/failure-rate {p}  POST /admin/llm {down}
 *   GET  /admin/stats (chat counters under `llm`)  POST /admin/reset
 *                                   (writes: Content-Type application/json, never cross-site; see adminWriteRefusal)
 *
 * Only node:http, and no logging at all: tenants and deadline headers must not
 * end up in any log, and a benchmark should measure Fairlane, not our output.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mulberry32 } from "../lib/random.ts";
import { ChatCompletions, type LlmStats } from "./chatCompletions.ts";

export interface DownstreamOptions {
  /** 0 = a free port (default 0). */
  port?: number;
  /** Default "127.0.0.1". */
  host?: string;
  /** Connection-pool size: requests beyond this many in flight are answered 503 POOL_EXHAUSTED at once. */
  capacity: number;
  /** Uniform per request unless the request overrides it with ?latencyMs=N. */
  latencyMs: { min: number; max: number };
  /** Seeds the PRNGs (latencies, failures, token delays) so runs repeat. */
  seed?: number;
  /**
   * How long a request beyond `capacity` waits for a free connection, as a real
   * database pool queues callers, before it is answered 503 POOL_EXHAUSTED.
   * Default 0: turned away at once.
   */
  queueTimeoutMs?: number;
  /** When set, /v1/* requests need `Authorization: Bearer <llmApiKey>` (else 401). */
  llmApiKey?: string;
}

export interface TenantStats {
  inFlight: number;
  peakInFlight: number;
  requests: number;
}

export interface DeadlineRecord {
  idempotencyKey: string | null;
  tenant: string;
  /** The X-Request-Deadline header exactly as received (ISO time or epoch ms), not parsed. */
  deadlineHeader: string | null;
  /** Epoch ms. */
  receivedAt: number;
}

/**
 * Counters since start or the last reset. For /fhir, once nothing is in flight:
 * requests = served + rejected + failed + aborted + duplicates.
 */
export interface DownstreamStats {
  inFlight: number;
  peakInFlight: number;
  capacity: number;
  requests: number;
  served: number;
  /** Answered 503 POOL_EXHAUSTED without executing (at once, or after waiting queueTimeoutMs). */
  rejected: number;
  /** Requests waiting for a connection now (queueTimeoutMs > 0). */
  waiting: number;
  /**
   * The most requests that wanted a connection at once: in flight plus waiting
   * (plus the one turned away). peakDemand / capacity is the pool's peak
   * utilisation, above 1 when callers queue or are refused.
   */
  peakDemand: number;
  /** GET /health calls (health probes), counted apart from /fhir work. */
  probes: number;
  /** Executed, then answered 503 UNAVAILABLE (outage) or 500 INTERNAL (failure rate). */
  failed: number;
  /** By X-Tenant-Id ("-" when absent). */
  byTenant: Record<string, TenantStats>;
  /** Answered with the stored first response of an already completed Idempotency-Key, not re-executed. */
  duplicates: number;
  /** The last 1,000 /fhir requests, oldest first. */
  deadlines: DeadlineRecord[];
  /** The client closed the connection before the response was sent. */
  aborted: number;
  modelStreams: { started: number; completed: number; cutMidway: number };
  /** POST /v1/chat/completions, counted by chatCompletions.ts. */
  llm: LlmStats;
}

/** The counters this file keeps itself; `llm` comes from ChatCompletions. */
type OwnStats = Omit<DownstreamStats, "llm">;

export type Latency = { min: number; max: number };

const DEADLINE_HISTORY = 1000;
/** Completed idempotency keys kept (oldest forgotten first), so a long benchmark cannot grow memory without bound. */
const IDEMPOTENCY_MEMORY = 100_000;
const BODY_LIMIT = 64 * 1024;

export { mulberry32 } from "../lib/random.ts";

function checkLatency(l: Latency, what: string): Latency {
  if (!Number.isFinite(l.min) || !Number.isFinite(l.max) || l.min < 0 || l.max < l.min) {
    throw new RangeError(`${what} must have 0 <= min <= max, got ${JSON.stringify(l)}`);
  }
  return { min: l.min, max: l.max };
}

interface StoredResponse {
  status: number;
  body: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function freshStats(capacity: number): OwnStats {
  return {
    inFlight: 0,
    peakInFlight: 0,
    capacity,
    requests: 0,
    served: 0,
    rejected: 0,
    waiting: 0,
    peakDemand: 0,
    probes: 0,
    failed: 0,
    byTenant: {},
    duplicates: 0,
    deadlines: [],
    aborted: 0,
    modelStreams: { started: 0, completed: 0, cutMidway: 0 },
  };
}

export class Downstream {
  private readonly host: string;
  private readonly port: number;
  private readonly capacity: number;
  private readonly queueTimeoutMs: number;
  /** Callers waiting for a connection, oldest first; each is told whether it got one. */
  private readonly waiters: ((granted: boolean) => void)[] = [];
  private latency: Latency;
  private outage = false;
  private failureRate = 0;
  // Separate streams, so turning on a failure rate does not shift the latency sequence.
  private readonly latencyRandom: () => number;
  private readonly failureRandom: () => number;
  private readonly tokenRandom: () => number;
  private s: OwnStats;
  private readonly llm: ChatCompletions;
  /** `<tenant>\n<Idempotency-Key>` -> the first successful response. Scoped by tenant, as a real API scopes keys by client. */
  private readonly completed = new Map<string, StoredResponse>();
  private server: Server | null = null;
  private baseUrl: string | null = null;

  constructor(opts: DownstreamOptions) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${opts.capacity}`);
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.capacity = opts.capacity;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? 0;
    if (!Number.isInteger(this.queueTimeoutMs) || this.queueTimeoutMs < 0) throw new RangeError(`queueTimeoutMs must be an integer >= 0, got ${opts.queueTimeoutMs}`);
    this.latency = checkLatency(opts.latencyMs, "latencyMs");
    const seed = opts.seed ?? 1;
    this.latencyRandom = mulberry32(seed);
    this.failureRandom = mulberry32(seed ^ 0x5bd1e995);
    this.tokenRandom = mulberry32(seed ^ 0x27d4eb2f);
    this.s = freshStats(this.capacity);
    this.llm = new ChatCompletions({ apiKey: opts.llmApiKey });
  }

  async start(): Promise<string> {
    if (this.server) throw new Error("downstream already started");
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    this.server = server;
    this.baseUrl = `http://${this.host}:${port}`;
    return this.baseUrl;
  }

  /** Closes the server and every socket; requests still waiting out their latency end as aborted. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  get url(): string {
    if (!this.baseUrl) throw new Error("downstream not started");
    return this.baseUrl;
  }

  stats(): DownstreamStats {
    return { ...structuredClone(this.s), llm: this.llm.stats() };
  }

  /**
   * Zeroes the counters. In-flight gauges stay (those requests will still leave),
   * and peaks restart from them. Completed idempotency keys are kept: they are the
   * service's data, not statistics.
   */
  resetStats(): void {
    const next = freshStats(this.capacity);
    next.inFlight = next.peakInFlight = this.s.inFlight;
    next.waiting = this.s.waiting;
    next.peakDemand = this.s.inFlight + this.s.waiting;
    for (const [tenant, t] of Object.entries(this.s.byTenant)) {
      if (t.inFlight > 0) next.byTenant[tenant] = { inFlight: t.inFlight, peakInFlight: t.inFlight, requests: 0 };
    }
    this.s = next;
    this.llm.resetStats();
  }

  setOutage(on: boolean): void {
    this.outage = on;
  }

  /** While down, /v1/chat/completions answers 503. */
  setLlmDown(down: boolean): void {
    this.llm.setDown(down);
  }

  setFailureRate(p: number): void {
    if (!Number.isFinite(p) || p < 0 || p > 1) throw new RangeError(`failure rate must be within 0..1, got ${p}`);
    this.failureRate = p;
  }

  setLatency(l: Latency): void {
    this.latency = checkLatency(l, "latency");
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://downstream");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const route = (): Promise<void> | void => {
      if (path.startsWith("/fhir/")) {
        if (method !== "GET" && method !== "POST") throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} is not allowed on /fhir`);
        const resource = decodeSegment(path.slice("/fhir/".length).split("/")[0] ?? "");
        if (!resource) throw new HttpError(404, "NOT_FOUND", "no resource named");
        return this.fhir(req, res, resource, url.searchParams.get("latencyMs"));
      }
      const key = `${method} ${path}`;
      if (path.startsWith("/admin/") && method !== "GET") {
        const why = adminWriteRefusal(req);
        if (why) throw new HttpError(403, "CROSS_SITE_REQUEST", why);
      }
      switch (key) {
        case "GET /health":
          this.s.probes++;
          return this.outage ? send(res, 503, { ok: false, code: "UNAVAILABLE" }) : send(res, 200, { ok: true });
        case "POST /model/stream":
          return this.modelStream(req, res);
        case "POST /v1/chat/completions":
          return this.llm.completions(req, res);
        case "GET /v1/models":
          return this.llm.models(req, res);
        case "POST /admin/outage":
          return readJson(req).then((b) => {
            if (typeof b.on !== "boolean") throw new HttpError(400, "BAD_REQUEST", "on must be a boolean");
            this.setOutage(b.on);
            send(res, 200, { ok: true, outage: b.on });
          });
        case "POST /admin/failure-rate":
          return readJson(req).then((b) => {
            if (typeof b.p !== "number" || !(b.p >= 0 && b.p <= 1)) throw new HttpError(400, "BAD_REQUEST", "p must be a number within 0..1");
            this.setFailureRate(b.p);
            send(res, 200, { ok: true, p: b.p });
          });
        case "POST /admin/llm":
          return readJson(req).then((b) => {
            if (typeof b.down !== "boolean") throw new HttpError(400, "BAD_REQUEST", "down must be a boolean");
            this.setLlmDown(b.down);
            send(res, 200, { ok: true, down: b.down });
          });
        case "GET /admin/stats":
          return send(res, 200, this.stats());
        case "POST /admin/reset":
          this.resetStats();
          return send(res, 200, { ok: true });
        default:
          throw new HttpError(404, "NOT_FOUND", `${method} ${path} does not exist`);
      }
    };
    // One place turns thrown HttpErrors (sync or async) into JSON answers.
    Promise.resolve()
      .then(route)
      .catch((err: unknown) => {
        if (res.headersSent || res.destroyed) return;
        if (err instanceof HttpError) send(res, err.status, { code: err.code, message: err.message });
        else send(res, 500, { code: "INTERNAL", message: "simulator error" });
      });
  }

  private async fhir(req: IncomingMessage, res: ServerResponse, resource: string, latencyParam: string | null): Promise<void> {
    // Validate before counting anything, so a malformed request is no sample.
    let latency: number;
    if (latencyParam !== null) {
      latency = Number(latencyParam);
      if (latencyParam.trim() === "" || !Number.isFinite(latency) || latency < 0) throw new HttpError(400, "BAD_REQUEST", "latencyMs must be a number >= 0");
    } else {
      const { min, max } = this.latency;
      latency = Math.round(min + (max - min) * this.latencyRandom());
    }
    req.resume(); // the body is not used; drain it so the connection stays healthy

    const tenant = header(req, "x-tenant-id") ?? "-";
    const idempotencyKey = header(req, "idempotency-key");
    this.s.requests++;
    this.tenant(tenant).requests++;
    const deadlines = this.s.deadlines;
    deadlines.push({ idempotencyKey, tenant, deadlineHeader: header(req, "x-request-deadline"), receivedAt: Date.now() });
    if (deadlines.length > DEADLINE_HISTORY) deadlines.shift();

    const memoKey = idempotencyKey === null ? null : `${tenant}\n${idempotencyKey}`;
    const stored = memoKey === null ? undefined : this.completed.get(memoKey);
    if (stored) {
      // A retry of work already done: answer as the first time, touch no pool connection.
      this.s.duplicates++;
      send(res, stored.status, stored.body, { "idempotent-replayed": "true" });
      return;
    }
    if (!(await this.connection(res, tenant))) {
      this.s.rejected++;
      send(res, 503, { code: "POOL_EXHAUSTED", message: `all ${this.capacity} connections are in use` });
      return;
    }

    // res "close" (not req "close", which also fires once the request body is read)
    // says the connection went away; if the timer has not fired by then, the client gave up.
    const finished = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        res.off("close", onClose);
        resolve(true);
      }, latency);
      const onClose = () => {
        clearTimeout(timer);
        resolve(false);
      };
      res.once("close", onClose);
    });
    this.leave(tenant);
    // Counters below go to this.s as it is now: a request that began before a reset
    // and ends after it counts in the new window.
    if (!finished) {
      this.s.aborted++;
      return;
    }
    // Outage and failures are decided when the work completes: the database failed under it.
    if (this.outage) {
      this.s.failed++;
      send(res, 503, { code: "UNAVAILABLE", message: "downstream outage" });
      return;
    }
    if (this.failureRate > 0 && this.failureRandom() < this.failureRate) {
      this.s.failed++;
      send(res, 500, { code: "INTERNAL", message: "simulated failure" });
      return;
    }
    this.s.served++;
    const body = { resource, tenant, ok: true, servedAt: new Date().toISOString() };
    // Only successes are remembered: a failed or abandoned attempt did no work, so its retry must execute.
    if (memoKey !== null) this.remember(memoKey, { status: 200, body });
    send(res, 200, body);
  }

  /**
   * Takes a pool connection for `tenant` (enter): at once if one is free, else
   * after waiting in line up to queueTimeoutMs (false: none came, or the caller
   * went away). A waiter takes the connection a leaving request frees in the same
   * tick (see leave), so inFlight never exceeds capacity.
   */
  private connection(res: ServerResponse, tenant: string): Promise<boolean> | boolean {
    const s = this.s;
    s.peakDemand = Math.max(s.peakDemand, s.inFlight + s.waiting + 1);
    if (s.inFlight < this.capacity && this.waiters.length === 0) {
      this.enter(tenant);
      return true;
    }
    if (this.queueTimeoutMs === 0) return false;
    return new Promise<boolean>((resolve) => {
      const done = (granted: boolean) => {
        clearTimeout(timer);
        res.off("close", gone);
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        this.s.waiting--;
        if (granted) this.enter(tenant);
        resolve(granted);
      };
      const gone = () => done(false);
      const timer = setTimeout(gone, this.queueTimeoutMs);
      res.once("close", gone);
      this.s.waiting++;
      this.waiters.push(done);
    });
  }

  private tenant(name: string): TenantStats {
    return (this.s.byTenant[name] ??= { inFlight: 0, peakInFlight: 0, requests: 0 });
  }

  private enter(tenant: string): void {
    const s = this.s;
    const t = this.tenant(tenant);
    s.inFlight++;
    s.peakInFlight = Math.max(s.peakInFlight, s.inFlight);
    t.inFlight++;
    t.peakInFlight = Math.max(t.peakInFlight, t.inFlight);
  }

  /** Always against the current stats: resetStats carries in-flight gauges over, so they stay balanced. */
  private leave(tenant: string): void {
    this.s.inFlight--;
    this.tenant(tenant).inFlight--;
    // Hand the freed connection to the oldest waiter (it calls enter itself).
    const next = this.waiters[0];
    if (next && this.s.inFlight < this.capacity) next(true);
  }

  private remember(key: string, response: StoredResponse): void {
    this.completed.set(key, response);
    if (this.completed.size > IDEMPOTENCY_MEMORY) {
      const oldest = this.completed.keys().next().value;
      if (oldest !== undefined) this.completed.delete(oldest);
    }
  }

  private async modelStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const b = await readJson(req);
    const tokens = b.tokens ?? 50;
    if (typeof tokens !== "number" || !Number.isInteger(tokens) || tokens < 0) throw new HttpError(400, "BAD_REQUEST", "tokens must be an integer >= 0");
    let tokenMs: Latency;
    try {
      const raw = (b.tokenMs ?? { min: 20, max: 60 }) as Partial<Latency>;
      tokenMs = checkLatency({ min: Number(raw.min), max: Number(raw.max) }, "tokenMs");
    } catch (err) {
      throw new HttpError(400, "BAD_REQUEST", (err as Error).message);
    }
    this.s.modelStreams.started++;
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.flushHeaders(); // the client sees the stream start before the first token

    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const delay = () => Math.round(tokenMs.min + (tokenMs.max - tokenMs.min) * this.tokenRandom());
    // Each token is "generated" for its delay, then written as its own chunk.
    const next = () => {
      timer = undefined;
      res.write(`tok${sent} `);
      sent++;
      if (sent === tokens) res.end();
      else timer = setTimeout(next, delay());
    };
    res.once("close", () => {
      // Stop writing at once: no token is produced for a reader that is gone.
      if (timer) clearTimeout(timer);
      if (res.writableFinished) this.s.modelStreams.completed++;
      else this.s.modelStreams.cutMidway++;
    });
    if (tokens === 0) res.end();
    else timer = setTimeout(next, delay());
  }
}

function decodeSegment(segment: string): string {
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
function adminWriteRefusal(req: IncomingMessage): string | null {
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

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined || one === "" ? null : one;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A small JSON object body; an empty body is `{}`. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
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
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new HttpError(400, "BAD_REQUEST", "body must be a JSON object");
  return parsed as Record<string, unknown>;
}
