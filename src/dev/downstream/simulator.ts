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
 *                                   (writes: Content-Type application/json, never cross-site; see adminWriteRefusal in simulatorHttp.ts)
 *
 * Only node:http, and no logging at all: tenants and deadline headers must not
 * end up in any log, and a benchmark should measure Fairlane, not our output.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mulberry32 } from "../../lib/random.ts";
import { ChatCompletions } from "./chatCompletions.ts";
import { ConnectionPool } from "./connectionPool.ts";
import { checkLatency, type DownstreamOptions, type Latency } from "./downstreamOptions.ts";
import { freshStats, tenantStats, type DownstreamStats, type OwnStats } from "./downstreamStats.ts";
import { modelStream } from "./modelStream.ts";
import { adminWriteRefusal, decodeSegment, header, HttpError, readJson, send } from "./simulatorHttp.ts";

// The parts of a Downstream, one file each: its options, its counters, the connection pool, the
// model stream and the HTTP helpers; the routes and the /fhir work stay here.
export type { DownstreamOptions, Latency } from "./downstreamOptions.ts";
export type { DeadlineRecord, DownstreamStats, TenantStats } from "./downstreamStats.ts";
export { mulberry32 } from "../../lib/random.ts";

const DEADLINE_HISTORY = 1000;
/** Completed idempotency keys kept (oldest forgotten first), so a long benchmark cannot grow memory without bound. */
const IDEMPOTENCY_MEMORY = 100_000;

interface StoredResponse {
  status: number;
  body: unknown;
}

export class Downstream {
  private readonly host: string;
  private readonly port: number;
  private readonly capacity: number;
  private readonly pool: ConnectionPool;
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
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${opts.capacity}`);
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.capacity = opts.capacity;
    const queueTimeoutMs = opts.queueTimeoutMs ?? 0;
    if (!Number.isInteger(queueTimeoutMs) || queueTimeoutMs < 0)
      throw new RangeError(`queueTimeoutMs must be an integer >= 0, got ${opts.queueTimeoutMs}`);
    this.latency = checkLatency(opts.latencyMs, "latencyMs");
    const seed = opts.seed ?? 1;
    this.latencyRandom = mulberry32(seed);
    this.failureRandom = mulberry32(seed ^ 0x5bd1e995);
    this.tokenRandom = mulberry32(seed ^ 0x27d4eb2f);
    this.s = freshStats(this.capacity);
    this.llm = new ChatCompletions({ apiKey: opts.llmApiKey });
    this.pool = new ConnectionPool(this.capacity, queueTimeoutMs, () => this.s);
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
          return modelStream(req, res, () => this.s, this.tokenRandom);
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
            if (typeof b.p !== "number" || !(b.p >= 0 && b.p <= 1))
              throw new HttpError(400, "BAD_REQUEST", "p must be a number within 0..1");
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
      if (latencyParam.trim() === "" || !Number.isFinite(latency) || latency < 0)
        throw new HttpError(400, "BAD_REQUEST", "latencyMs must be a number >= 0");
    } else {
      const { min, max } = this.latency;
      latency = Math.round(min + (max - min) * this.latencyRandom());
    }
    req.resume(); // the body is not used; drain it so the connection stays healthy

    const tenant = header(req, "x-tenant-id") ?? "-";
    const idempotencyKey = header(req, "idempotency-key");
    this.s.requests++;
    tenantStats(this.s, tenant).requests++;
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
    if (!(await this.pool.connection(res, tenant))) {
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
    this.pool.leave(tenant);
    // Counters below go to this.s as it is now: a request that began before a reset
    // and ends after it counts in the new window.
    if (!finished) {
      this.s.aborted++;
      return;
    }
    // Outage and failures are decided when the work completes: the database failed under it.
    if (this.outage) {
      this.s.failed++;
      this.s.firstFailedAt ??= Date.now();
      send(res, 503, { code: "UNAVAILABLE", message: "downstream outage" });
      return;
    }
    if (this.failureRate > 0 && this.failureRandom() < this.failureRate) {
      this.s.failed++;
      this.s.firstFailedAt ??= Date.now();
      send(res, 500, { code: "INTERNAL", message: "simulated failure" });
      return;
    }
    this.s.served++;
    const body = { resource, tenant, ok: true, servedAt: new Date().toISOString() };
    // Only successes are remembered: a failed or abandoned attempt did no work, so its retry must execute.
    if (memoKey !== null) this.remember(memoKey, { status: 200, body });
    send(res, 200, body);
  }

  private remember(key: string, response: StoredResponse): void {
    this.completed.set(key, response);
    if (this.completed.size > IDEMPOTENCY_MEMORY) {
      const oldest = this.completed.keys().next().value;
      if (oldest !== undefined) this.completed.delete(oldest);
    }
  }
}
