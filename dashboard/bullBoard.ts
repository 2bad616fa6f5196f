import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { Router, type NextFunction, type Request, type Response } from "express";
import type { Keys } from "../queues/keys.ts";
import { PARKED_QUEUE, REVIEW_QUEUE, execQueue } from "../queues/names.ts";
import type { PolicyRegistry } from "../src/tenancy/registry.ts";

export const BULL_BOARD_PATH = "/admin/queues";

/**
 * An ingress or parked queue: the dispatcher and the recovery worker move its jobs by script, so no
 * BullMQ worker ever consumes it. Its worker list is "not applicable" (null: the board shows no
 * "No workers" warning, which would read as an alarm at 2:47 AM) and its description says why. Exec
 * queues keep the real list: there, no worker is a real outage.
 */
class ScriptFedQueue extends BullMQAdapter {
  override async getWorkers(): Promise<null> {
    return null;
  }
}

type FedBy = "ingress" | "parked" | "review";
const DESCRIPTIONS: Record<FedBy, string> = {
  ingress: "Ingress: the dispatcher moves jobs from here to exec by script (no BullMQ worker consumes it, by design).",
  parked: "Parked: workflows waiting for a dependency; the recovery worker requeues them by script (no BullMQ worker, by design).",
  review: "Review: workflows waiting for a reviewer's decision; a decision requeues them by script (no BullMQ worker, by design).",
};

/**
 * Bull Board's page links Google Fonts: an admin page would call a third party
 * on every view (and break its Content-Security-Policy, src/api/securityHeaders.ts).
 * Without the link its text falls back to the system's sans-serif and monospace.
 */
const EXTERNAL_LINK = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>/gi;
function withoutExternalLinks(req: Request, res: Response, next: NextFunction): void {
  if (req.method === "GET" && !req.path.startsWith("/api/") && !req.path.startsWith("/static/")) {
    const send = res.send.bind(res);
    res.send = ((body?: unknown) => send(typeof body === "string" ? body.replace(EXTERNAL_LINK, "") : body)) as Response["send"];
  }
  next();
}

/**
 * Bull Board at /admin/queues (the caller puts admin auth in front of it).
 * Shows the shared queues of every cell (exec per pool, parked) and every
 * ingress queue that has ever held a job, registering new tenants' queues as
 * they appear (a SMEMBERS per cell every `refreshMs`). All queues share the
 * one connection passed in. Read-only: removing or retrying a job here would
 * bypass the workflow record and the slot accounting; on-call actions go
 * through the admin API and the Tenant Concurrency Dashboard. (Its API's
 * writes answer 405 read-only; before that, adminAuth refuses any of them
 * sent cross-site or without a JSON body under Basic credentials.)
 */
export class BullBoard {
  readonly router: Router;
  private readonly board: ReturnType<typeof createBullBoard>;
  private readonly queues = new Map<string, Queue>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: PolicyRegistry,
    private readonly refreshMs = 2_000,
  ) {
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    this.board = createBullBoard({
      queues: [],
      serverAdapter,
      options: {
        uiConfig: {
          boardTitle: "Fairlane",
          miscLinks: [{ text: "Tenant Concurrency Dashboard", url: "/dashboard" }],
        },
      },
    });
    this.router = Router().use(withoutExternalLinks, serverAdapter.getRouter() as Router);
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }

  /** Registers every queue not yet on the board. Exposed so tests need not wait for the timer. */
  async refresh(): Promise<void> {
    const tenants = this.registry.list();
    const cells = new Set(["default", ...tenants.map((t) => t.policy.cell)]);
    const pools = new Set(["default", ...tenants.flatMap((t) => t.policy.pools)]);
    for (const cell of cells) {
      const ck = this.keys.cell(cell);
      const names = [...pools].map(execQueue).concat(PARKED_QUEUE, REVIEW_QUEUE, ...(await this.redis.smembers(ck.queues)).sort());
      for (const name of names)
        this.add(
          ck.bullPrefix,
          name,
          cells.size > 1 ? `${cell}/${name}` : name,
          name === PARKED_QUEUE ? "parked" : name === REVIEW_QUEUE ? "review" : name.startsWith("ingress.") ? "ingress" : undefined,
        );
    }
  }

  private add(prefix: string, name: string, displayName: string, fedBy?: FedBy): void {
    const id = `${prefix}|${name}`;
    if (this.queues.has(id)) return;
    const queue = new Queue(name, { connection: this.redis, prefix, skipVersionCheck: true });
    // Without a listener BullMQ console.errors every failed reconnect, once per queue, while Redis is
    // away (a stack trace per queue per second); the api's connection log already says it, throttled.
    queue.on("error", () => undefined);
    this.queues.set(id, queue);
    this.board.addQueue(
      fedBy
        ? new ScriptFedQueue(queue, { readOnlyMode: true, displayName, description: DESCRIPTIONS[fedBy] })
        : new BullMQAdapter(queue, { readOnlyMode: true, displayName }),
    );
  }
}
