/**
 * The least state a fair, durable scheduler must keep in Redis per drained workflow, written by scripts
 * with no queue around them (issue 20's floor): the record's start and end (each read first), an
 * audit-trail entry for each, a slot lease taken and given back, the tenant's running count up and down,
 * its ready-set seat and virtual time. 14 commands. Plain BullMQ's drain plus this is the cheapest drain
 * a design keeping that state could have (test/bench/floor.ts; the throughput scenario's floor row).
 */
import { connect } from "../../../src/lib/redis.ts";
import { dropKeys, type Ctx } from "./drain.ts";
import { Meter, type PhaseCost } from "./meter.ts";

const TENANTS = 10;

// One workflow's least state per loop turn, in the shapes Fairlane's own scripts write (field names,
// a lease of tenant|class|pool|time|charge, a trail entry of wf/ev/by/why): ARGV = now, then id, tenant pairs.
const LEAST_STATE = `
local p, now = KEYS[1], ARGV[1]
for i = 2, #ARGV, 2 do
  local id, tenant = ARGV[i], ARGV[i + 1]
  local rec, trail, running = p .. "wf:" .. id, p .. "trail:" .. tenant, p .. "running:" .. tenant
  local r = redis.call("HMGET", rec, "state", "cancelRequested", "deadlineAt", "attempts", "tenant")
  redis.call("HSET", rec, "state", "running", "startedAt", now, "runId", "r" .. id, "worker", "w1", "attempts", "1")
  redis.call("XADD", trail, "*", "wf", id, "ev", "started", "by", "w1", "why", "attempt 1")
  redis.call("HSET", p .. "slots", id, tenant .. "|B|default|" .. now .. "|12")
  redis.call("HINCRBY", running, "BC", 1)
  redis.call("ZADD", p .. "ready:B", i, "00000000000001:" .. tenant)
  redis.call("HSET", p .. "wfq:B", "v:" .. tenant, i)
  r = redis.call("HMGET", rec, "state", "runId", "tenant", "idem", "worker")
  redis.call("HSET", rec, "state", "completed", "finishedAt", now, "result", "{}")
  redis.call("HDEL", rec, "runId", "worker")
  redis.call("EXPIRE", rec, 604800)
  redis.call("XADD", trail, "*", "wf", id, "ev", "ended", "by", "w1", "why", "completed")
  redis.call("HDEL", p .. "slots", id)
  redis.call("HINCRBY", running, "BC", -1)
end
return #ARGV`;

/** The least state of `jobs` queued workflows (their records written first, uncounted), `perCall` a script call. */
export async function leastState(c: Ctx, tag: string, jobs: number, perCall: number): Promise<PhaseCost> {
  const p = `{floor-${tag}}:`;
  const client = connect(c.url);
  try {
    for (let i = 0; i < jobs; i += 1000) {
      const pipe = client.pipeline();
      for (let j = i; j < Math.min(i + 1000, jobs); j++)
        pipe.hset(`${p}wf:${j}`, { state: "queued", tenant: `t${j % TENANTS}`, class: "B", enqueuedAt: "1", type: "noop", bytes: "272" });
      await pipe.exec();
    }
    const sha = (await client.script("LOAD", LEAST_STATE)) as string;
    const meter = new Meter(c.admin, c.redisPid);
    await meter.begin([]);
    const t0 = performance.now();
    let inFlight: Promise<unknown>[] = [];
    for (let i = 0; i < jobs; i += perCall) {
      const args = [String(Date.now())];
      for (let j = i; j < Math.min(i + perCall, jobs); j++) args.push(String(j), `t${j % TENANTS}`);
      inFlight.push(client.evalsha(sha, 1, p, ...args));
      if (inFlight.length >= 50) {
        await Promise.all(inFlight);
        inFlight = [];
      }
    }
    await Promise.all(inFlight);
    return await meter.end(jobs, (performance.now() - t0) / 1000);
  } finally {
    await dropKeys(client, `${p}*`);
    client.disconnect();
  }
}
