import { pino, stdSerializers, type DestinationStream, type Logger } from "pino";

/**
 * The one logger. Payloads are PHI and API keys are secrets: the redaction
 * list below removes them wherever they appear in a log object, and request
 * logs never include bodies (src/api/app.ts).
 *
 * Redis errors are the other way data leaks: an ioredis ReplyError carries
 * `command: { name, args }`, and the args of a script call are its keys and
 * the whole job data (payload included). `serializeErr` keeps the command's
 * name and drops its args, for `err` and for any logged value that is an error
 * or has a `command` (the `log` formatter), nested ones (EXECABORT's
 * `previousErrors`, causes) included. pino-http gets the same serializer.
 */
export const REDACT_PATHS = [
  "payload",
  "*.payload",
  "data",
  "*.data",
  "key",
  "*.key",
  "apiKey",
  "*.apiKey",
  "token",
  "*.token",
  "command.args",
  "*.command.args",
  "req.headers.authorization",
  "req.headers.cookie",
  "res.headers['set-cookie']",
];

const MAX_DEPTH = 6;

/** A copy of a log value without any Redis command's args: errors become pino's `{ type, message, stack, ... }`. */
function scrub(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_DEPTH) return "[too deep]";
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Error) return scrub(stdSerializers.err(value), depth);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "command" && v !== null && typeof v === "object") {
      const name = (v as { name?: unknown }).name;
      out[k] = typeof name === "string" ? { name } : {};
    } else out[k] = scrub(v, depth + 1);
  }
  return out;
}

/** pino's err serializer, minus Redis command args (see the header). Takes an error or an already serialized one (pino-http). */
export function serializeErr(err: unknown): unknown {
  return scrub(err, 0);
}

const needsScrub = (v: unknown): boolean => v instanceof Error || (v !== null && typeof v === "object" && "command" in v);

/** Every logged object: values under any key that are errors or carry a `command` lose its args too (as does a `command` itself). */
function scrubLogObject(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(obj)) {
    if (k === "err") continue; // it has its serializer
    if (k === "command" && v !== null && typeof v === "object") {
      out ??= { ...obj };
      out[k] = (scrub({ command: v }, 0) as { command: unknown }).command;
    } else if (needsScrub(v)) {
      out ??= { ...obj };
      out[k] = serializeErr(v);
    }
  }
  return out ?? obj;
}

export function createLogger(role: string, level = process.env.LOG_LEVEL ?? "info", destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { role, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: { err: serializeErr },
    formatters: { log: scrubLogObject },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * A warning that repeats for as long as a condition lasts (Redis away, a loop
 * failing every pass): each message is logged at most once per `everyMs`, the
 * first occurrence at once, later lines carrying `suppressed` (how many were
 * not logged since the previous line). `ok()` ends the condition: with a
 * message, it logs that it ended and how many failures there were, but only
 * when a line about it was logged, so a flapping condition still writes a few
 * lines per `everyMs`, never one per failure.
 */
export class LogThrottle {
  private readonly lines = new Map<string, { lastAt: number; suppressed: number }>();
  private failures = 0;
  private logged = false;

  constructor(
    private readonly log: Logger,
    private readonly everyMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(obj: Record<string, unknown>, msg: string): void {
    this.hit("warn", obj, msg);
  }

  error(obj: Record<string, unknown>, msg: string): void {
    this.hit("error", obj, msg);
  }

  /** True between a failure and the next `ok()`. */
  get failing(): boolean {
    return this.failures > 0;
  }

  ok(msg?: string, obj: Record<string, unknown> = {}): void {
    if (!this.failures) return;
    if (msg && this.logged) this.log.info({ ...obj, failures: this.failures }, msg);
    this.failures = 0;
    this.logged = false;
  }

  private hit(level: "warn" | "error", obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    this.failures++;
    const line = this.lines.get(msg);
    if (line && now - line.lastAt < this.everyMs) {
      line.suppressed++;
      return;
    }
    this.log[level](line?.suppressed ? { ...obj, suppressed: line.suppressed } : obj, msg);
    this.lines.set(msg, { lastAt: now, suppressed: 0 });
    this.logged = true;
  }
}
