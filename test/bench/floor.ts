/**
 * What the drain bars of issue 20 leave room for: on one Redis, in each round, plain BullMQ's drain
 * (1 × 100), Fairlane's (1 × 100 + its dispatcher, 10 tenants), and the least per-workflow state any
 * fair, durable scheduler has to keep in Redis, done by scripts alone with no queue around it: the
 * record's start and end, an audit-trail entry for each, a slot lease taken and given back, the
 * tenant's running count up and down, and its seat in a ready set and its virtual time, once per
 * workflow. That state is run once with one workflow per script call and once with ten (the first
 * bears a call's overhead of its own, the second shares it, as a script composed into BullMQ's would).
 * Plain's drain plus the least state is the cheapest drain a design keeping that state could have;
 * the report divides plain's figures by it. Redis's CPU from /proc, commands from INFO (lib/meter.ts).
 *   node --import tsx test/bench/floor.ts [jobs=20000] [rounds=3]
 */
import { connect } from "../../src/lib/redis.ts";
import { type Ctx, fairDrain, plainDrain } from "./lib/drain.ts";
import { benchRedis } from "./lib/infra.ts";
import { leastState } from "./lib/leastState.ts";
import { fmt, median } from "./lib/stats.ts";

const jobs = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 3);
const layout = { processes: 1, concurrency: 100 };
const TENANTS = 10;

const f0 = (n: number) => fmt(n);
const f2 = (n: number) => fmt(n, 2);
const span = (xs: number[], f: (n: number) => string) =>
  xs.length > 1 ? `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : f(xs[0]!);

process.setMaxListeners(0); // one exit hook per child process the drains start, as in run.ts
const server = await benchRedis();
const c: Ctx = { url: server.url, redisPid: server.pid, admin: connect(server.url) };
const rows: Record<string, number[]> = {};
const add = (k: string, v: number) => {
  rows[k] = [...(rows[k] ?? []), v];
};
try {
  for (let i = 1; i <= rounds; i++) {
    const plain = await plainDrain(c, { name: "plain BullMQ 1x100", tag: `floor${i}`, jobs, layout });
    const fair = await fairDrain(c, { name: "Fairlane 1x100", tag: `floor${i}`, jobs, tenants: TENANTS, layout });
    const one = await leastState(c, `r${i}a`, jobs, 1);
    const ten = await leastState(c, `r${i}b`, jobs, 10);
    const plainCpu = plain.drain.cpuUs;
    const fairProcesses = fair.drain.cpuUs - fair.drain.redisCpuUs;
    console.log(
      `round ${i}: plain ${f0(plain.drain.perSec)}/s, Redis ${f0(plain.drain.redisCpuUs)} µs, all ${f0(plainCpu)} µs, ` +
        `${f2(plain.drain.commands)} commands; Fairlane ${f0(fair.drain.perSec)}/s, Redis ${f0(fair.drain.redisCpuUs)} µs, ` +
        `processes ${f0(fairProcesses)} µs, ${f2(fair.drain.commands)} commands; least state ${f0(one.redisCpuUs)} / ` +
        `${f0(ten.redisCpuUs)} µs (1 / 10 a call), ${f2(ten.commands)} commands`,
    );
    add("plain /s", plain.drain.perSec);
    add("plain Redis µs", plain.drain.redisCpuUs);
    add("plain all µs", plainCpu);
    add("plain worker µs", plainCpu - plain.drain.redisCpuUs);
    add("plain commands", plain.drain.commands);
    add("Fairlane /s", fair.drain.perSec);
    add("Fairlane Redis µs", fair.drain.redisCpuUs);
    add("Fairlane processes µs", fairProcesses);
    add("Fairlane commands", fair.drain.commands);
    add("least state µs, 1 a call", one.redisCpuUs);
    add("least state µs, 10 a call", ten.redisCpuUs);
    add("least state commands", ten.commands);
    // The cheapest drain keeping that state: plain's, plus the state (the cheaper, shared-call figure).
    add("floor: CPU vs plain", (plainCpu + ten.redisCpuUs) / plainCpu);
    add("floor: commands vs plain", (plain.drain.commands + ten.commands) / plain.drain.commands);
    add("floor: drain vs plain, if CPU-bound", plainCpu / (plainCpu + ten.redisCpuUs));
    add("Fairlane Redis beyond plain + least state, µs", fair.drain.redisCpuUs - plain.drain.redisCpuUs - ten.redisCpuUs);
    add("Fairlane processes beyond plain's worker, µs", fairProcesses - (plainCpu - plain.drain.redisCpuUs));
  }
  console.log(`\nper drained workflow, median (min–max) of ${rounds} round(s), ${jobs} workflows each:`);
  for (const [k, xs] of Object.entries(rows)) console.log(`  ${k.padEnd(48)} ${span(xs, k.includes("vs") ? f2 : f0)}`);
} finally {
  c.admin.disconnect();
  await server.stop();
}
