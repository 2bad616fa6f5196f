import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { ReplyError } from "ioredis";
import { redisError, redisTrouble } from "../../src/lib/errors.ts";
import { createLogger, LogThrottle } from "../../src/observability/logger.ts";

const SENTINEL = "PHI-7f3a-sentinel";
const KEY = "tq1:{tq1.default}:ingress.clinic.B:wait";

/** A ReplyError as ioredis rejects a script call with: the command and all its args attached. */
function replyError(message: string): Error & { command: { name: string; args: string[] } } {
  const err = new ReplyError(message) as Error & { command: { name: string; args: string[] } };
  err.command = { name: "evalsha", args: ["3c2f", "11", KEY, JSON.stringify({ payload: { note: SENTINEL } })] };
  return err;
}

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger("test", "debug", sink), lines };
}

describe("the logger never writes a Redis command's args", () => {
  it("keeps the command name and drops its args, under err, under any other key, and nested", () => {
    const { log, lines } = capture();
    const oom = replyError("OOM command not allowed when used memory > 'maxmemory'. script: 3c2f, on @user_script:40.");
    log.error({ err: oom }, "as err");
    log.error(oom, "as the first argument");
    log.warn({ failure: oom }, "under another key");
    log.warn({ command: oom.command, n: 1 }, "a bare command object");
    const execAbort = Object.assign(new ReplyError("EXECABORT Transaction discarded because of previous errors."), {
      previousErrors: [oom],
    });
    log.error({ err: execAbort }, "nested in previousErrors");
    log.error({ err: new Error("wrapped", { cause: oom }) }, "as a cause");
    assert.equal(lines.length, 6);
    for (const line of lines) {
      assert.ok(!line.includes(SENTINEL), `payload leaked: ${line}`);
      assert.ok(!line.includes(KEY), `key leaked: ${line}`);
    }
    const first = JSON.parse(lines[0]!);
    assert.deepEqual(first.err.command, { name: "evalsha" });
    assert.equal(first.err.type, "ReplyError");
    assert.match(first.err.message, /^OOM command not allowed/);
    assert.match(first.err.stack, /ReplyError/);
    assert.deepEqual(JSON.parse(lines[1]!).err.command, { name: "evalsha" });
    assert.deepEqual(JSON.parse(lines[2]!).failure.command, { name: "evalsha" });
    assert.deepEqual(JSON.parse(lines[3]!).command, { name: "evalsha" });
    assert.deepEqual(JSON.parse(lines[4]!).err.previousErrors[0].command, { name: "evalsha" });
  });
});

describe("redisTrouble", () => {
  it("reads full, read-only and away from Redis's errors, wrapped in a script or a MULTI too", () => {
    const cases: [string, ReturnType<typeof redisTrouble>][] = [
      ["OOM command not allowed when used memory > 'maxmemory'.", "full"],
      [
        "ERR Error running script (call to f_3c2f): @user_script:40: @user_script: 40: -OOM command not allowed when used memory > 'maxmemory'.",
        "full",
      ],
      ["MISCONF Errors writing to the AOF file: No space left on device", "full"],
      ["MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", "full"],
      ["READONLY You can't write against a read only replica. script: 3c2f, on @user_script:40.", "read_only"],
      ["ERR Error running script (call to f_1): @user_script:3: -READONLY You can't write against a read only replica.", "read_only"],
      ["LOADING Redis is loading the dataset in memory", "unavailable"],
      ["CLUSTERDOWN The cluster is down", "unavailable"],
      ["Connection is closed.", "unavailable"],
      ["Command timed out", "unavailable"],
      ["Stream isn't writeable and enableOfflineQueue options is false", "unavailable"],
      ["ERR wrong number of arguments for 'hget' command", undefined],
      ["ERR user_script:1: bad argument", undefined],
    ];
    for (const [message, want] of cases) assert.equal(redisTrouble(new ReplyError(message)), want, message);
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" });
    assert.equal(redisTrouble(refused), "unavailable");
    const maxRetries = new Error("Reached the max retries per request limit (which is 1).");
    Object.defineProperty(maxRetries, "name", { value: "MaxRetriesPerRequestError" });
    assert.equal(redisTrouble(maxRetries), "unavailable");
    const aborted = Object.assign(new ReplyError("EXECABORT Transaction discarded because of previous errors."), {
      previousErrors: [new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
    });
    assert.equal(redisTrouble(aborted), "full");
    assert.equal(redisTrouble("OOM"), undefined, "only errors");
  });

  it("answers each with a 503, its code and Retry-After", () => {
    const e = redisError("read_only", 7);
    assert.deepEqual([e.status, e.code, e.headers["Retry-After"]], [503, "REDIS_READ_ONLY", "7"]);
    assert.equal(redisError("full", 5).code, "REDIS_FULL");
    assert.equal(redisError("unavailable", 5).code, "REDIS_UNAVAILABLE");
  });
});

describe("LogThrottle", () => {
  it("logs the first failure, then at most one line per interval with how many it held back", () => {
    const { log, lines } = capture();
    let now = 0;
    const t = new LogThrottle(log, 30_000, () => now);
    for (let i = 0; i < 100; i++, now += 1_000) t.warn({ err: "ECONNREFUSED" }, "redis connection error");
    const logged = lines.map((l) => JSON.parse(l));
    assert.equal(logged.length, 4, "at 0, 30, 60 and 90 s");
    assert.equal(logged[0].suppressed, undefined);
    assert.deepEqual(
      logged.slice(1).map((l) => l.suppressed),
      [29, 29, 29],
    );
    t.ok("redis connection restored");
    assert.equal(JSON.parse(lines.at(-1)!).failures, 100);
    assert.equal(t.failing, false);
  });

  it("a flapping condition stays within a few lines per interval", () => {
    const { log, lines } = capture();
    let now = 0;
    const t = new LogThrottle(log, 30_000, () => now);
    for (let i = 0; i < 60; i++, now += 500) {
      t.error({}, "dispatch pass failed; retrying");
      t.ok("dispatch passes succeed again");
    }
    assert.equal(lines.length, 2, "one failure and one recovery line in 30 s, not 60 of each");
  });
});
